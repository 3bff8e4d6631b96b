"""What a fine-tuning step needs besides the UNet, made ready off the step's critical path.

- `Prefetcher`: the examples of the coming micro-batches decoded (PNG / NPZ video decompression)
  in background threads, so a step does not decode in the main thread. Decoding is the same
  function (`Item.load` / `load_media`) and draws nothing, so the tensors are the same.
- `PrecomputedEncodings`: every prompt's embedding (and the empty prompt's, for prompt dropout)
  and every image's VAE posterior (mean, std) computed once, in chunks, before training; the text
  encoders and the VAE then leave the accelerator while the UNet trains. The posterior is sampled
  at each step with the example's own generator, as on the fly, so every random draw is unchanged;
  the encoders see other batch compositions, which moves float rounding (`precompute_encodings`
  is therefore part of the training identity when on).
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.base import Item, load_media
from ganrm_bench.methods.finetune.protocol import map_cond

#: where the frozen encoders wait while the UNet trains (tests move them to "meta" to see that they left)
OFFLOAD_DEVICE = "cpu"


def decode_media(x: Any) -> Any:
    """An image/video in memory from an Item or a path (other inputs as they are): what the
    denoisers' `load_image` / `load_video` would read."""
    if isinstance(x, Item):
        return x.load()
    if isinstance(x, (str, Path)):
        return load_media(x)
    return x


def decode_example(example: Any) -> Any:
    """A PreferencePair / Sample with its media decoded."""
    changes = {f.name: decode_media(getattr(example, f.name)) for f in dataclasses.fields(example) if f.name != "prompt"}
    return dataclasses.replace(example, **changes)


class Prefetcher:
    """`fn(key)` for each key in order, computed up to `ahead` keys early in `threads` background
    threads (0: in the caller's thread, when asked for)."""

    def __init__(self, fn: Callable[[Any], Any], keys: Iterable[Any], *, threads: int = 2, ahead: int = 2):
        self.fn, self.keys, self.threads, self.ahead = fn, keys, threads, max(1, ahead)

    def __iter__(self) -> Iterator[Any]:
        if self.threads <= 0:
            for key in self.keys:
                yield self.fn(key)
            return
        keys = iter(self.keys)
        with ThreadPoolExecutor(self.threads, thread_name_prefix="ganrm-decode") as pool:
            pending = []
            for key in keys:
                pending.append(pool.submit(self.fn, key))
                if len(pending) > self.ahead:
                    yield pending.pop(0).result()
            for future in pending:
                yield future.result()


def _image_key(x: Any) -> Any:
    if isinstance(x, Item):
        return ("item", x.key)
    if isinstance(x, (str, Path)):
        return ("path", str(x))
    return ("object", id(x))  # an image in memory: the training data holds it for the whole run


def _images_of(example: Any) -> list[Any]:
    return [example.winner, example.loser] if hasattr(example, "winner") else [example.image]


def stack_cond(rows: Sequence[Any]) -> Any:
    """One conditioning batch from per-example rows (tensors, or dicts / tuples of them)."""
    first = rows[0]
    if first is None:
        return None
    if isinstance(first, dict):
        return {k: stack_cond([r[k] for r in rows]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(stack_cond([r[i] for r in rows]) for i in range(len(first)))
    if hasattr(first, "shape"):
        return torch.stack(list(rows))
    return first


def _row(cond: Any, i: int) -> Any:
    return map_cond(lambda x: x[i].detach().to("cpu", copy=True), cond)


class PrecomputedEncodings:
    """Prompt embeddings and VAE posteriors of the examples a process trains on, on the CPU; it
    answers `encode_prompts` and `images_to_model_space` like the denoiser, without its encoders."""

    def __init__(self, model: Any, examples: Sequence[Any], *, device: torch.device | str, chunk: int = 16, threads: int = 2):
        name = type(model).__name__
        if not all(hasattr(model, h) for h in ("encode_images", "sample_latents")):
            raise UserError(f"the {name} denoiser cannot precompute its encodings (it has no encode_images / sample_latents)",
                            hint="set precompute_encodings: false")
        self.model, self.device = model, torch.device(device)
        prompts = sorted({ex.prompt for ex in examples} | {""})
        self._cond: dict[str, Any] = {}
        for start in range(0, len(prompts), chunk):
            part = prompts[start : start + chunk]
            cond = model.encode_prompts(part)
            self._cond.update({p: _row(cond, i) for i, p in enumerate(part)})
        images: dict[Any, Any] = {}
        for ex in examples:
            for x in _images_of(ex):
                images.setdefault(_image_key(x), x)
        keys = list(images)
        self._row = {k: i for i, k in enumerate(keys)}
        chunks = [keys[i : i + chunk] for i in range(0, len(keys), chunk)]
        means, stds = [], []
        for media in Prefetcher(lambda ks: [decode_media(images[k]) for k in ks], chunks, threads=threads):
            mean, std = model.encode_images(media)
            means.append(mean.detach().cpu())
            stds.append(std.detach().cpu() if std is not None else None)
        self._mean = torch.cat(means) if means else None
        self._std = torch.cat(stds) if stds and stds[0] is not None else None

    def encode_prompts(self, prompts: Sequence[str]) -> Any:
        return map_cond(lambda x: x.to(self.device), stack_cond([self._cond[p] for p in prompts]))

    def images_to_model_space(self, images: Sequence[Any], generator: Any = None) -> torch.Tensor:
        rows = torch.tensor([self._row[_image_key(x)] for x in images])
        mean = self._mean[rows].to(self.device)
        std = self._std[rows].to(self.device) if self._std is not None else None
        return self.model.sample_latents(mean, std, generator)


def offload_encoders(model: Any, training_device: torch.device | str) -> list[str]:
    """Move the denoiser's frozen encoders off the training device (to `OFFLOAD_DEVICE`); their
    names. Nothing moves when training on that device itself."""
    modules = model.encoder_modules() if hasattr(model, "encoder_modules") else {}
    if torch.device(training_device) == torch.device(OFFLOAD_DEVICE):
        return []
    for module in modules.values():
        module.to(OFFLOAD_DEVICE)
    if torch.device(training_device).type == "cuda":
        torch.cuda.empty_cache()
    return list(modules)
