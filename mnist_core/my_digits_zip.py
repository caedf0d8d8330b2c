"""My digits as a zip: export (PNGs + labels.csv) and a bounded, all-or-nothing import.

An upload is hostile until checked: every bound (MAX_IMPORT_*) is checked before the first image is decoded
(the zip's size and end record, its central directory, the rows of labels.csv, each PNG's header), and
again on the bytes actually unpacked, since a zip can lie about its sizes.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections.abc import Iterable

import numpy as np

from mnist_core.errors import LabError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LABELS_CSV = "labels.csv"
MAX_IMPORT_ZIP_BYTES = 50 * 1024 * 1024  # the zip file itself
MAX_IMPORT_FILES = 5000  # members of the zip
MAX_IMPORT_ROWS = 5000  # rows of labels.csv (each names a different PNG)
MAX_LABELS_CSV_BYTES = 1024 * 1024  # labels.csv unpacked (5000 rows of an export take about 250 KB)
MAX_IMPORT_PNG_BYTES = 2 * 1024 * 1024  # one PNG unpacked (an exported drawing is a few KB)
MAX_IMPORT_BYTES = 50 * 1024 * 1024  # every member unpacked, in total
MAX_IMPORT_IMAGE_PIXELS = 2000 * 2000  # one image, from its PNG header (a drawing is 280x280)
MAX_IMPORT_TOTAL_PIXELS = 400_000_000  # every image together: about 5000 drawings of 280x280



def export_zip(digits: Iterable) -> bytes:
    """A zip of the drawings (my_digits.Digit) as PNGs plus labels.csv (file, label, created)."""
    buf = io.BytesIO()
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["file", "label", "created"])
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for d in digits:
            name = f"digit-{d.id:06d}-label{d.label}.png"
            zf.writestr(name, d.png)
            writer.writerow([name, d.label, d.created])
        zf.writestr(LABELS_CSV, table.getvalue())
    return buf.getvalue()


def read_zip(blob: bytes) -> list[tuple[bytes, np.ndarray, int]]:
    """Check a zip from export_zip (or made by hand) and prepare every drawing as (png, input, label);
    raises LabError naming the bad entry, or the bound it breaks, before any image is decoded."""
    from mnist_core import preprocess

    if len(blob) > MAX_IMPORT_ZIP_BYTES:
        raise LabError(f"the zip is {len(blob):,} bytes, over the limit of {MAX_IMPORT_ZIP_BYTES:,}")
    _check_end_record(blob)
    try:
        zf = zipfile.ZipFile(io.BytesIO(blob))
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise LabError("not a zip file") from None
    with zf:
        infos = _check_members([i for i in zf.infolist() if not i.is_dir()])
        rows = _read_labels(zf, infos)
        _check_pixels(zf, rows)
        items, unpacked = [], 0
        for info, label in rows:
            png = _unpack(zf, info, MAX_IMPORT_PNG_BYTES)
            unpacked += len(png)
            if unpacked > MAX_IMPORT_BYTES:  # the central directory's sizes can lie; the bytes cannot
                raise LabError(f"the files unpack to over {MAX_IMPORT_BYTES:,} bytes in total, over the limit")
            prepared = preprocess.image_to_mnist(png, info.filename)
            if prepared.empty:
                raise LabError(f"{info.filename}: {prepared.message}")
            items.append((png, prepared.input, label))
    return items


def _check_end_record(blob: bytes) -> None:
    """Refuse a central directory too large for MAX_IMPORT_FILES before zipfile builds an object per entry."""
    at = blob.rfind(b"PK\x05\x06", max(0, len(blob) - 22 - 0xFFFF))
    if at < 0 or len(blob) - at < 22:
        raise LabError("not a zip file")
    entries = int.from_bytes(blob[at + 10 : at + 12], "little")
    directory_bytes = int.from_bytes(blob[at + 12 : at + 16], "little")
    if entries > MAX_IMPORT_FILES or directory_bytes > MAX_IMPORT_FILES * 1024:  # ZIP64 says 0xFFFF here
        raise LabError(f"the zip lists over {MAX_IMPORT_FILES:,} files, over the limit")


def _check_members(members: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    if len(members) > MAX_IMPORT_FILES:
        raise LabError(f"the zip has {len(members):,} files, over the limit of {MAX_IMPORT_FILES:,}")
    for info in members:
        limit = MAX_LABELS_CSV_BYTES if info.filename == LABELS_CSV else MAX_IMPORT_PNG_BYTES
        if info.file_size > limit:
            raise LabError(f"{info.filename}: unpacks to {info.file_size:,} bytes, over the limit of {limit:,}")
    total = sum(info.file_size for info in members)
    if total > MAX_IMPORT_BYTES:
        raise LabError(f"the files unpack to {total:,} bytes in total, over the limit of {MAX_IMPORT_BYTES:,}")
    return {info.filename: info for info in members}


def _read_labels(zf: zipfile.ZipFile, infos: dict[str, zipfile.ZipInfo]) -> list[tuple[zipfile.ZipInfo, int]]:
    """labels.csv's rows as (member, label), at most MAX_IMPORT_ROWS, each naming a different PNG of the zip."""
    if LABELS_CSV not in infos:
        raise LabError(f"the zip has no {LABELS_CSV} (columns: file, label)")
    try:
        text = _unpack(zf, infos[LABELS_CSV], MAX_LABELS_CSV_BYTES).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LabError(f"{LABELS_CSV} is not UTF-8 text") from None
    rows, first_seen = [], {}
    try:
        for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            if len(rows) == MAX_IMPORT_ROWS:
                raise LabError(f"{LABELS_CSV} has over {MAX_IMPORT_ROWS:,} rows, over the limit")
            name, label = str(row.get("file") or "").strip(), str(row.get("label") or "").strip()
            if name not in infos or name == LABELS_CSV:
                raise LabError(f"{LABELS_CSV} line {n}: no file {name[:80]!r} in the zip")
            if name in first_seen:
                raise LabError(f"{LABELS_CSV} line {n}: {name[:80]!r} was already named on line {first_seen[name]}")
            if len(label) != 1 or label not in "0123456789":  # str.isdigit() also takes '²', which int() refuses
                raise LabError(f"{LABELS_CSV} line {n}: label must be 0-9, got {label[:20]!r}")
            first_seen[name] = n
            rows.append((infos[name], int(label)))
    except csv.Error as exc:
        raise LabError(f"{LABELS_CSV} is not readable CSV ({exc})") from None
    return rows


def _check_pixels(zf: zipfile.ZipFile, rows: list[tuple[zipfile.ZipInfo, int]]) -> None:
    """Each image's size from its PNG header (the first 24 bytes), before any image is decoded."""
    total = 0
    for info, _label in rows:
        head = _unpack(zf, info, 24, whole=False)
        if not head.startswith(PNG_MAGIC) or head[12:16] != b"IHDR" or len(head) < 24:
            raise LabError(f"{info.filename}: not a PNG image")
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        if width * height > MAX_IMPORT_IMAGE_PIXELS:
            raise LabError(f"{info.filename}: {width:,}x{height:,} pixels is over the limit of "
                           f"{MAX_IMPORT_IMAGE_PIXELS:,} pixels per image")
        total += width * height
        if total > MAX_IMPORT_TOTAL_PIXELS:
            raise LabError(f"the images hold over {MAX_IMPORT_TOTAL_PIXELS:,} pixels in total, over the limit")


def _unpack(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, *, whole: bool = True) -> bytes:
    """A member's bytes, at most `limit` of them actually decompressed (whole=False: just its first `limit`)."""
    try:
        with zf.open(info) as fh:
            data = fh.read(limit + 1 if whole else limit)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise LabError(f"{info.filename}: damaged in the zip ({str(exc)[:100]})") from None
    except NotImplementedError:
        raise LabError(f"{info.filename}: compressed with a method the lab cannot unpack") from None
    except RuntimeError:  # zipfile's word for an encrypted member
        raise LabError(f"{info.filename}: encrypted, which the lab cannot unpack") from None
    if whole and len(data) > limit:
        raise LabError(f"{info.filename}: unpacks to over {limit:,} bytes, over the limit")
    return data
