"""Helpers for the hostile-input suite (issue 5): running the CLI the way a user does (exit code + stderr),
crafted model archives, snapshots to prove files are byte-identical."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_DEFAULT = ROOT / "saved_models" / "default"


# ---------- CLI ----------


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run `python -m mnist_core ARGV` in this process: (exit code, stdout, stderr)."""
    from mnist_core.cli import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse errors exit through cli.common.LabParser.error
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def run_cli_process(*argv: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """The real thing, in a child process: catches anything printed outside main() (TF noise, tracebacks)."""
    return subprocess.run([sys.executable, "-m", "mnist_core", *map(str, argv)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def assert_one_line_error(code: int, err: str, *, contains: str = "") -> str:
    """Exit 2 and exactly one line on stderr, no traceback; returns the line."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit code {code}, stderr: {err!r}"
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {err!r}"
    assert lines[0].startswith("error:"), lines[0]
    assert contains.lower() in lines[0].lower(), f"{contains!r} not in {lines[0]!r}"
    return lines[0]


# ---------- models ----------


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes, to prove a model is byte-identical afterwards."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def temp_leftovers(models: Path) -> list[str]:
    return sorted(p.name for p in Path(models).iterdir() if p.name.startswith(".tmp-"))


def write_lab_folder(models: Path, name: str, model_file: Path, metadata: dict | None = None) -> Path:
    """A registry folder for `model_file` with a fresh metadata.json whose sha256 matches, as a forger would write."""
    folder = models / name
    folder.mkdir()
    shutil.copyfile(model_file, folder / "model.keras")
    meta = {"name": name, "spec": {"kind": "mlp"}, "created": "2026-01-01 00:00:00",
            "test": {"accuracy": 0.99, "loss": 0.05}, **(metadata or {})}
    meta["model_sha256"] = sha256(folder / "model.keras")
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


def rewrite_config(src: Path, dst: Path, change) -> None:
    """Copy a .keras archive, passing its config.json (a dict) through `change`."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                data = json.dumps(change(json.loads(data))).encode()
            zout.writestr(item, data)


def layers_of(config: dict) -> list[dict]:
    return config["config"]["layers"]


# ---------- images ----------


def png_bytes(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


# ---------- hostile files ----------


def bad_uploads(digit_png: bytes) -> dict[str, bytes]:
    jpeg = png_bytes(Image.open(io.BytesIO(digit_png)), "JPEG", quality=95)
    return {
        "non-image-named-png": b"#!/bin/sh\necho this is not a picture\n" * 20,
        "html-named-png": b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        "truncated-png": digit_png[: len(digit_png) * 2 // 3],
        "truncated-jpeg": jpeg[: len(jpeg) // 2],
        "empty": b"",
    }


BAD_UPLOADS = ["non-image-named-png", "html-named-png", "truncated-png", "truncated-jpeg", "empty"]


def bomb_png(width: int, height: int) -> bytes:
    """A valid 8-bit grayscale PNG of all-black rows: tiny on disk, width*height bytes once decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp, row, parts = zlib.compressobj(9), b"\x00" * (width + 1), []
    for _ in range(height // 100):
        parts.append(comp.compress(row * 100))
    parts.append(comp.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def break_entries(models: Path) -> dict[str, str]:
    """Each broken entry and the reason its listing must give."""
    (models / "zero" / "model.keras").write_bytes(b"")
    data = (models / "truncated" / "model.keras").read_bytes()
    (models / "truncated" / "model.keras").write_bytes(data[:-100])
    (models / "nometa" / "metadata.json").unlink()
    (models / "badmeta" / "metadata.json").write_text("{not json")
    (models / "nomodel" / "model.keras").unlink()
    return {"zero": "empty", "truncated": "truncated or damaged", "nometa": "metadata.json is missing",
            "badmeta": "not valid JSON", "nomodel": "no model.keras"}


BROKEN = ["zero", "truncated", "nometa", "badmeta", "nomodel"]
