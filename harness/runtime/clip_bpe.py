"""CLIP's BPE tokenizer written offline from open_clip's bundled vocabulary, so transformers'
`CLIPTokenizer` works with no hub access and the same token ids as open_clip's tokenizer (models
built with random weights, tiny test pipelines)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import tempfile
from functools import lru_cache
from pathlib import Path

from ganrm_bench.harness.errors import UserError


def bundled_bpe_file() -> Path:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("--random-weights: the CLIP tokenizer is written from open_clip's bundled BPE file, and open_clip is not installed",
                        hint="pip install open_clip_torch")
    return Path(list(spec.submodule_search_locations)[0]) / "bpe_simple_vocab_16e6.txt.gz"


def write_clip_bpe(directory: str | Path) -> Path:
    """Write vocab.json + merges.txt of the OpenAI CLIP BPE from open_clip's bundled file, so that
    transformers' `CLIPTokenizer` works offline with the same token ids as open_clip's tokenizer."""
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    lines = gzip.open(bundled_bpe_file()).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m.split()) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    (directory / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return directory


@lru_cache(maxsize=1)
def clip_bpe_dir() -> Path:
    """A folder with the CLIP BPE files, written once per process."""
    return write_clip_bpe(tempfile.mkdtemp(prefix="ganrm-bench-clip-bpe-"))


def clip_tokenizer(pad_token: str = "<|endoftext|>"):
    from transformers import CLIPTokenizer

    d = clip_bpe_dir()
    return CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt"), pad_token=pad_token, model_max_length=77)
