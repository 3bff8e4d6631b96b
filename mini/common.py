"""Shared helpers of the mini plugins: images to tensors, shipped weights, digests, digit parsing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ganrm_bench.harness.errors import MissingWeightsError, UserError
from ganrm_bench.harness.store.digests import file_digest
from ganrm_bench.mini.data import IMAGE_SIZE

WEIGHTS_DIR = Path(__file__).parent / "weights"
GENERATOR_FILE = "generator.safetensors"
METRIC_FILE = "metric_net.safetensors"
ANNOTATOR_FILE = "annotator.safetensors"
INFO_FILE = "train_info.json"

_DIGEST_MEMO: dict[tuple[str, int, int], str] = {}


def weights_path(value: str | None, default_file: str, *, what: str) -> Path:
    """The weights file a plugin uses: its param, else the shipped file; a clear error if absent."""
    path = Path(value).expanduser() if value else WEIGHTS_DIR / default_file
    if not path.is_file():
        raise MissingWeightsError(
            what, str(path),
            "the mini world's weights ship in mini/weights/; rebuild them with "
            "`python -m ganrm_bench.mini.train --out mini/weights`, or give an existing file",
        )  # fmt: skip
    return path


def digest(path: str | Path) -> str:
    """sha256 of a weights file, memoized by (path, size, mtime)."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _DIGEST_MEMO:
        _DIGEST_MEMO[key] = file_digest(path)
    return _DIGEST_MEMO[key]


def load_state(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A safetensors state dict and its string metadata (never unpickles)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
        state = {k: f.get_tensor(k) for k in f.keys()}
    return state, meta


def load_net(net: torch.nn.Module, path: Path, *, what: str) -> torch.nn.Module:
    state, _ = load_state(path)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserError(f"{path}: not a {what} checkpoint ({str(exc).splitlines()[0]})",
                        hint="rebuild with `python -m ganrm_bench.mini.train`") from exc  # fmt: skip
    return net.eval().requires_grad_(False)


def images_to_tensor(images: Sequence[Any]) -> torch.Tensor:
    """PIL images or uint8 arrays (H×W or H×W×C) to float32 [B, 1, 16, 16] in [0, 1] (mean of the
    colour channels). Other sizes are resized to 16×16 with PIL bilinear."""
    from PIL import Image

    out = np.empty((len(images), 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for i, im in enumerate(images):
        if isinstance(im, Image.Image):
            arr = np.asarray(im.convert("RGB"))
        else:
            arr = np.asarray(im)
            if arr.dtype != np.uint8:
                raise UserError(f"mini plugins take uint8 images, got an array of dtype {arr.dtype} (item {i})")
        if arr.ndim == 3:
            arr = arr[..., :3]
        elif arr.ndim != 2:
            raise UserError(f"mini plugins take H×W or H×W×C images, got shape {arr.shape} (item {i})")
        if arr.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
            mode = "RGB" if arr.ndim == 3 else "L"
            arr = np.asarray(Image.fromarray(arr, mode).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR))
        gray = arr.astype(np.float32).mean(-1) if arr.ndim == 3 else arr.astype(np.float32)
        out[i, 0] = gray / 255.0
    return torch.from_numpy(out)


_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
# a lone numeral (not part of "12", "x7", "3.5") or a number word
_DIGIT_RE = re.compile(r"(?<!\w)(?<!\d\.)([0-9])(?!\w)(?!\.\d)|\b(" + "|".join(_WORDS) + r")\b", re.IGNORECASE)


def parse_digit(prompt: str | None) -> int:
    """The digit a prompt names ("a handwritten digit 7", "the digit seven"); a UserError if it
    names none or several different ones."""
    found = {int(m.group(1)) if m.group(1) else _WORDS[m.group(2).lower()] for m in _DIGIT_RE.finditer(prompt or "")}
    if len(found) != 1:
        what = "names no digit" if not found else f"names several digits {sorted(found)}"
        raise UserError(
            f"mini-world prompt {prompt!r} {what}",
            hint="mini-world prompts name one digit, e.g. 'a handwritten digit 7' (prompt source `mini_digits`)",
        )
    return found.pop()


def read_info(directory: Path = WEIGHTS_DIR) -> dict[str, Any]:
    return json.loads((directory / INFO_FILE).read_text())
