"""The only files the study serves: the run's own store items. An item's file is derived from its
key (`items/<ab>/<key>.<ext>` under the store root), never taken from samples.json, which must
agree with it; symbolic links are refused when the study opens and again when a file is read
(O_NOFOLLOW). What goes out is the picture re-encoded as a plain PNG, so no file name, metadata
chunk or format tells one row from another."""

from __future__ import annotations

import io
import os
import re
import stat
from pathlib import Path

import numpy as np

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Item

KEY_RE = re.compile(r"^[0-9a-f]{16,128}$")
IMAGE_EXTS = ("png", "jpg", "jpeg", "webp", "npz")


def confined_item(store_root: Path, item: Item, row: str) -> Path:
    """The store file of `item`, after checking that samples.json names exactly that file (inside
    the store, an image, no symbolic link on the way); a UserError otherwise."""
    root = Path(store_root).resolve()
    ext = Path(item.path).suffix.lower().lstrip(".")
    where = f"samples.json, row {row!r}, item {item.key!r}"
    if not KEY_RE.match(item.key or "") or ext not in IMAGE_EXTS:
        raise UserError(f"{where}: {item.path} is not an image item of the store ({', '.join(IMAGE_EXTS)} named by its key); refusing to serve it")
    expected = root / "items" / item.key[:2] / f"{item.key}.{ext}"
    given = Path(os.path.abspath(item.path))
    if given != expected and Path(os.path.realpath(given)) != expected:
        raise UserError(f"{where}: names {item.path}, which is not that item's file in the store {root}; refusing to serve it",
                        hint="samples.json was edited, or the run used another store: pass --cache with the run's store, or re-run the spec")
    for part in (expected.parent.parent, expected.parent, expected):
        if part.is_symlink():
            raise UserError(f"{where}: {part} is a symbolic link; the study serves only plain files of the store")
    return expected


def read_confined(path: Path) -> bytes:
    """A regular file's bytes, refusing a symbolic link put there after the study opened."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def png_of(path: Path) -> bytes:
    """The picture as a PNG with no metadata (a video: its first frame)."""
    from PIL import Image

    data = read_confined(path)
    if path.suffix == ".npz":
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            im = Image.fromarray(np.asarray(npz["frames"][0]))
    else:
        with Image.open(io.BytesIO(data)) as src:
            im = src.convert("RGBA" if "A" in src.getbands() else "RGB")
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()
