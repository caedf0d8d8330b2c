"""Issue 12, groups 1 and 2 for the data files: the my-digits database told apart as busy, full, read-only or
damaged (with a real second process holding the lock and a real full or read-only disk), moving aside only
real damage with its journal files, and bounds checked before the work on zip imports, model archives and
MNIST .npz files."""

from __future__ import annotations

import io
import re
import sqlite3
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from hostile_util import write_lab_folder
from PIL import Image

from mnist_core import my_digits, my_digits_zip, registry
from mnist_core.errors import LabError
from tests.test_my_digits import BUSY, drawing, fill, small_disk, writer_holding


def problem(fn, *args) -> my_digits.DatabaseError:
    with pytest.raises(my_digits.DatabaseError) as info:
        fn(*args)
    assert "\n" not in str(info.value)
    return info.value


def files_of(db: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(db.parent.iterdir()) if p.name.startswith(db.name)}


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "my_digits.sqlite"
    monkeypatch.setenv("MNIST_MY_DIGITS_DB", str(path))
    monkeypatch.setattr(my_digits, "BUSY_TIMEOUT_SECONDS", 0.3)
    monkeypatch.setattr(my_digits, "MOVE_ASIDE_WAIT_SECONDS", 0.3)
    return path


@pytest.fixture(scope="module")
def digits(small_mnist):
    return [drawing(small_mnist, i) for i in range(6)]


# ---------- group 1: busy, full, read-only and damaged are told apart ----------


def test_a_writer_holding_the_write_lock_makes_writes_busy_and_reads_still_work(db, digits):
    my_digits.add_many(digits[:2])
    with writer_holding(db, "BEGIN IMMEDIATE", "DELETE FROM digits"):
        assert len(my_digits.all_digits()) == 2  # the writer's uncommitted delete is not seen, nor in the way
        busy = problem(my_digits.add, *digits[2])
        assert busy.kind == "busy" and BUSY in str(busy) and str(db) in str(busy)
        assert "damaged" not in str(busy) and not busy.can_move_aside
    assert len(my_digits.all_digits()) == 2  # the killed writer's delete never happened
    my_digits.add(*digits[2])


def test_a_writer_committing_makes_reads_busy_not_damaged(db, digits):
    my_digits.add(*digits[0])
    with writer_holding(db, "BEGIN EXCLUSIVE"):
        busy = problem(my_digits.all_digits)
        assert busy.kind == "busy" and not busy.can_move_aside and "damaged" not in str(busy)
    assert len(my_digits.all_digits()) == 1


def test_moving_aside_is_refused_while_a_writer_lives_even_when_the_file_is_damaged(db, digits):
    my_digits.add_many(digits)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute("UPDATE digits SET input = x'00' WHERE id = 3")  # a row that breaks the schema
    damaged = problem(my_digits.all_digits)
    assert damaged.kind == "damaged" and damaged.can_move_aside and "digit 3" in str(damaged)
    with writer_holding(db, "BEGIN IMMEDIATE", "INSERT INTO digits (label, png, input, created) "
                        "SELECT label, png, input, created FROM digits WHERE id = 1"):
        before = files_of(db)
        assert f"{db.name}-journal" in before  # the writer's journal: moving the database alone would strand it
        refused = problem(my_digits.move_aside)
        assert refused.kind == "busy"
        assert files_of(db) == before  # nothing moved, nothing lost
    kept = my_digits.move_aside()  # the writer is gone (its journal rolled back): now it may move
    assert not db.exists() and kept.is_file() and my_digits.all_digits() == []


def test_moving_aside_takes_the_journal_wal_and_shm_files_along(db):
    db.write_bytes(b"not a database" * 100)
    companions = {"-journal": b"", "-wal": b"W" * 600, "-shm": b"S" * 600}
    for suffix, content in companions.items():
        db.with_name(db.name + suffix).write_bytes(content)
    assert problem(my_digits.all_digits).kind == "damaged"
    kept = my_digits.move_aside()
    assert kept.read_bytes() == b"not a database" * 100
    for suffix in companions:
        assert not db.with_name(db.name + suffix).exists(), suffix
        assert kept.with_name(kept.name + suffix).exists(), suffix  # beside the database, under its new name
    assert kept.with_name(kept.name + "-wal").read_bytes() == b"W" * 600


def test_a_sound_database_is_never_moved_aside(db, digits):
    my_digits.add(*digits[0])
    with pytest.raises(LabError, match="not damaged"):
        my_digits.move_aside()
    assert len(my_digits.all_digits()) == 1


@pytest.mark.parametrize("change, words", [
    ("UPDATE digits SET label = '²' WHERE id = 2", "label '²'"),
    ("UPDATE digits SET input = 'abc' WHERE id = 2", "digit 2"),
])
def test_a_row_that_breaks_the_schema_is_damage_in_words(db, digits, change, words):
    my_digits.add_many(digits[:3])
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute(change)
    damaged = problem(my_digits.all_digits)
    assert damaged.kind == "damaged" and words in str(damaged)


def test_a_crashed_writers_journal_is_rolled_back_by_a_read(db, digits):
    """The journal left by a writer killed after its changes reached the file: a read-only reader cannot roll
    it back (SQLITE_READONLY_ROLLBACK), so the read does, and sees the rows as they were."""
    my_digits.add_many(digits[:2])
    script = (f"import sqlite3, os; c = sqlite3.connect({str(db)!r}); c.execute('PRAGMA cache_size = 2');"
              "c.execute('BEGIN');"
              "[c.execute('INSERT INTO digits (label, png, input, created) SELECT label, png, input, created "
              "FROM digits WHERE id = 1') for _ in range(300)]; os._exit(9)")
    assert subprocess.run([sys.executable, "-c", script], timeout=60).returncode == 9
    assert db.with_name(db.name + "-journal").stat().st_size > 0
    uri = f"{db.resolve().as_uri()}?mode=ro"
    with pytest.raises(sqlite3.OperationalError) as info:  # what a plain read-only connection meets
        sqlite3.connect(uri, uri=True).execute("SELECT count(*) FROM digits").fetchone()
    assert info.value.sqlite_errorcode == sqlite3.SQLITE_READONLY_ROLLBACK
    assert len(my_digits.all_digits()) == 2


def test_on_a_full_disk_reads_work_and_a_save_says_the_disk_is_full(tmp_path, monkeypatch, digits):
    with small_disk(tmp_path / "disk") as disk:
        db = disk / "my_digits.sqlite"
        monkeypatch.setenv("MNIST_MY_DIGITS_DB", str(db))
        my_digits.add_many(digits[:3])
        fill(disk)
        assert [d.label for d in my_digits.all_digits()] == [d[2] for d in digits[:3]]
        assert len(my_digits.export_zip()) > 0
        full = problem(my_digits.add, *digits[3])
        assert full.kind == "full" and "is full, so nothing was written" in str(full) and str(db) in str(full)
        assert not full.can_move_aside
        assert problem(my_digits.import_zip, my_digits.export_zip()).kind == "full"
        assert len(my_digits.all_digits()) == 3


def test_on_a_read_only_disk_reads_work_and_a_save_says_read_only(tmp_path, monkeypatch, digits):
    with small_disk(tmp_path / "disk") as disk:
        db = disk / "my_digits.sqlite"
        monkeypatch.setenv("MNIST_MY_DIGITS_DB", str(db))
        my_digits.add_many(digits[:2])
        garbage = disk / "garbage.sqlite"
        garbage.write_bytes(b"not a database" * 100)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        stuck = problem(my_digits.move_aside, garbage)  # damaged, but the disk cannot rename it
        assert stuck.kind == "read-only" and garbage.exists()
        assert len(my_digits.all_digits()) == 2
        read_only = problem(my_digits.relabel, 1, 5)
        assert read_only.kind == "read-only" and "mounted read-only" in str(read_only)
        with pytest.raises(LabError, match="not damaged"):
            my_digits.move_aside()
        assert db.exists() and len(my_digits.all_digits()) == 2


# ---------- group 2: a my-digits zip is bounded before the work starts ----------


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def png_of(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height)).save(buf, "PNG")
    return buf.getvalue()


def patch_member(blob: bytes, name: str, *, size: int | None = None, method: int | None = None) -> bytes:
    """Rewrite what the zip's local and central headers say about `name`: its unpacked size or its method."""
    raw = bytearray(blob)
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        local = zf.getinfo(name).header_offset
    central = raw.find(b"PK\x01\x02" + raw[local + 4 : local + 6])
    while raw[central + 46 : central + 46 + len(name)] != name.encode():
        central = raw.find(b"PK\x01\x02", central + 4)
    if size is not None:
        struct.pack_into("<I", raw, local + 22, size)
        struct.pack_into("<I", raw, central + 24, size)
    if method is not None:
        struct.pack_into("<H", raw, local + 8, method)
        struct.pack_into("<H", raw, central + 10, method)
    return bytes(raw)


def refused(blob: bytes, match: str, seconds: float = 1.0, megabytes: float = 20) -> str:
    """The import is refused with one line matching `match`, within `seconds` and `megabytes` of Python memory."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(LabError, match=match) as info:
            my_digits.import_zip(blob)
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    assert elapsed < seconds and peak < megabytes, (elapsed, peak)
    assert "\n" not in str(info.value) and my_digits.all_digits() == []
    return str(info.value)


def test_a_4kb_zip_naming_one_png_300000_times_is_refused_at_once(db, digits):
    blob = zip_of({"a.png": digits[0][0], "labels.csv": b"file,label\n" + b"a.png,3\n" * 300_000})
    assert len(blob) < 12_000
    said = refused(blob, r"labels\.csv", seconds=0.5, megabytes=5)
    assert f"{my_digits_zip.MAX_LABELS_CSV_BYTES:,}" in said


def test_rows_of_labels_csv_are_bounded_and_each_names_a_different_png(db, digits, monkeypatch):
    pngs = {f"{i}.png": digits[i][0] for i in range(4)}
    monkeypatch.setattr(my_digits_zip, "MAX_IMPORT_ROWS", 3)
    rows = b"file,label\n" + b"".join(f"{i}.png,{digits[i][2]}\n".encode() for i in range(4))
    refused(zip_of({**pngs, "labels.csv": rows}), "over 3 rows")
    twice = b"file,label\n0.png,1\n1.png,2\n0.png,3\n"
    assert "line 4" in refused(zip_of({**pngs, "labels.csv": twice}), "already named on line 2")


def test_a_zip_listing_60000_files_is_refused_from_its_end_record(db):
    blob = zip_of({f"{i}": b"" for i in range(60_000)})
    refused(blob, "over 5,000 files", seconds=0.3, megabytes=3)


def test_a_zip_whose_end_record_hides_its_file_count_is_still_counted(db):
    blob = bytearray(zip_of({f"{i}": b"" for i in range(5_001)}))
    end = blob.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", blob, end + 8, 10, 10)  # claims 10 entries; zipfile reads them all anyway
    refused(bytes(blob), "5,001 files, over the limit of 5,000")


def test_unpacked_bytes_are_bounded_per_png_and_in_total(db):
    assert "a.png" in refused(zip_of({"a.png": b"\0" * 3 * 2**20, "labels.csv": b"file,label\na.png,1\n"}),
                              "unpacks to 3,145,728 bytes, over the limit of 2,097,152", megabytes=8)
    many = {f"{i}.png": b"\0" * (2**21 - 1) for i in range(26)}
    refused(zip_of({**many, "labels.csv": b"file,label\n0.png,1\n"}), "in total, over the limit of 52,428,800",
            megabytes=8)


def test_a_member_that_unpacks_to_more_than_it_declares_is_refused_as_damaged(db, digits):
    blob = zip_of({"a.png": digits[0][0] + b"\0" * 2**20, "labels.csv": b"file,label\na.png,1\n"})
    said = refused(patch_member(blob, "a.png", size=len(digits[0][0])), "a.png: damaged in the zip")
    assert "CRC" in said


def test_a_member_with_an_unknown_compression_method_is_refused_in_words(db, digits):
    blob = zip_of({"a.png": digits[0][0], "labels.csv": b"file,label\na.png,1\n"})
    refused(patch_member(blob, "a.png", method=99), "a.png: compressed with a method the lab cannot unpack")


def test_pixels_are_bounded_per_image_and_in_total_from_the_png_headers(db):
    big = png_of(3000, 3000)  # 9 million pixels: decodable, but over the import's bound
    said = refused(zip_of({"big.png": big, "labels.csv": b"file,label\nbig.png,1\n"}), "big.png: 3,000x3,000 pixels")
    assert f"{my_digits_zip.MAX_IMPORT_IMAGE_PIXELS:,}" in said
    page = png_of(2000, 2000)
    many = {f"{i}.png": page for i in range(101)}
    labels = b"file,label\n" + b"".join(f"{i}.png,1\n".encode() for i in range(101))
    refused(zip_of({**many, "labels.csv": labels}), "over 400,000,000 pixels in total")


def test_a_label_like_superscript_two_is_refused_in_words(db, digits):
    blob = zip_of({"a.png": digits[0][0], "labels.csv": "file,label\na.png,²\n".encode()})
    refused(blob, "line 2: label must be 0-9, got '²'")


# ---------- group 2: a model archive is bounded before Keras opens it ----------


def archive_with(src: Path, dst: Path, extra: dict[str, int], *, level: int = 1) -> Path:
    """A copy of the .keras archive `src` plus members of the given sizes (zeros, deflated: a small file)."""
    zero = b"\0" * 2**20
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zout:
        for item in zin.infolist():
            zout.writestr(item, zin.read(item))
        for name, size in extra.items():
            with zout.open(name, "w", force_zip64=True) as fh:
                for start in range(0, size, len(zero)):
                    fh.write(zero[: min(len(zero), size - start)])
    return dst


@pytest.fixture(scope="module")
def bombs(tiny_trained, tmp_path_factory) -> dict[str, Path]:
    root, src = tmp_path_factory.mktemp("model_bombs"), tiny_trained / "model.keras"
    return {
        "gigabyte asset": archive_with(src, root / "asset.keras", {"assets/blob.bin": 2**30}),
        "two big weights": archive_with(src, root / "two.keras", {"assets/a.h5": 200 * 2**20, "assets/b.h5": 200 * 2**20}),
        "many members": archive_with(src, root / "many.keras", {f"assets/{i}": 0 for i in range(100)}),
    }


def assert_listed_as_not_loadable(name: str, reason: str) -> None:
    entry = {e.name: e for e in registry.list_models()}[name]
    assert not entry.ok and entry.status == "unsafe" and re.search(reason, entry.reason), entry.reason
    assert "\n" not in entry.reason
    start = time.perf_counter()
    with pytest.raises(LabError, match=reason):
        registry.load(name)
    assert time.perf_counter() - start < 1.0


def test_a_model_whose_asset_unpacks_to_a_gigabyte_is_listed_as_not_loadable(isolated_dirs, bombs):
    assert bombs["gigabyte asset"].stat().st_size < 5 * 2**20  # a small file with a valid checksum
    write_lab_folder(isolated_dirs, "bomb", bombs["gigabyte asset"])
    start = time.perf_counter()
    assert registry.inspect("bomb").status == "unsafe"
    assert time.perf_counter() - start < 0.5  # refused from the central directory, nothing unpacked
    assert_listed_as_not_loadable("bomb", r"assets/blob\.bin unpacks to 1,073,741,824 bytes, over the limit of "
                                          r"268,435,456 per member")


def test_members_that_unpack_to_too_much_together_are_refused(isolated_dirs, bombs):
    write_lab_folder(isolated_dirs, "two", bombs["two big weights"])
    assert_listed_as_not_loadable("two", r"unpacks to [\d,]+ bytes, over the limit of 335,544,320 in total")


def test_an_archive_with_too_many_members_is_refused(isolated_dirs, bombs):
    write_lab_folder(isolated_dirs, "many", bombs["many members"])
    assert_listed_as_not_loadable("many", r"has 10\d members, over the limit of 64")


def test_a_weights_member_that_unpacks_past_its_declared_size_is_caught_in_the_listing(isolated_dirs, tiny_trained,
                                                                                       tmp_path):
    src = tiny_trained / "model.keras"
    with zipfile.ZipFile(src) as zin:
        weights = zin.read("model.weights.h5")
        blob = zip_of({item.filename: zin.read(item) + (b"\0" * 2**24 if item.filename == "model.weights.h5" else b"")
                       for item in zin.infolist()})
    lying = tmp_path / "lying.keras"
    lying.write_bytes(patch_member(blob, "model.weights.h5", size=len(weights)))
    write_lab_folder(isolated_dirs, "lying", lying)
    assert_listed_as_not_loadable("lying", r"damaged \(model\.weights\.h5: Bad CRC")


def test_compare_lists_an_oversized_model_with_its_reason_and_never_loads_it(app_page, registry_with, bombs,
                                                                              monkeypatch):
    models = registry_with("tiny")
    write_lab_folder(models, "bomb", bombs["gigabyte asset"], {"created": "2099-01-01 00:00:00"})  # the newest
    loads = []
    real_load = registry.load
    monkeypatch.setattr(registry, "load", lambda name: loads.append(name) or real_load(name))
    for _visit in range(2):
        at = app_page("views/compare.py")
        assert not at.exception
        assert "bomb" not in at.multiselect(key="compare_pick").options
        listed = " ".join(m.value for m in at.markdown)
        assert "**bomb** (unsafe)" in listed and "over the limit" in listed
    assert "bomb" not in loads


def test_a_model_file_too_large_to_hash_is_refused_from_its_size(isolated_dirs, tiny_trained):
    folder = write_lab_folder(isolated_dirs, "huge", tiny_trained / "model.keras")
    archive = (folder / "model.keras").read_bytes()
    with open(folder / "model.keras", "wb") as fh:  # a valid zip after a 2 GB hole: zipfile would still read it
        fh.seek(2 * 2**30)
        fh.write(archive)
    start = time.perf_counter()
    entry = registry.inspect("huge")
    assert time.perf_counter() - start < 0.5
    assert entry.status == "unsafe" and re.search(r"model\.keras is 2,147,\d{3},\d{3} bytes, over the limit", entry.reason)
