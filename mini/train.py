"""Train the miniature world's networks from fixed seeds and write them as safetensors + JSON.

    python -m ganrm_bench.mini.train --out mini/weights [--steps 1000]

Trains, in order, each from its own seed so that none depends on another's random stream:
1. the metric classifier (`MetricNet`) on the `train` split;
2. the annotator (`AnnotatorNet`) on the `annotator` split;
3. the class-conditional diffusion generator (diffusers `UNet2DModel`, DDPM ε-loss, 10 % label
   dropout to the null class for classifier-free guidance) on the `train` split.
Everything runs on one CPU thread with `torch.use_deterministic_algorithms(True)`, so the same
command on the same software versions writes bit-identical files. `train_info.json` records the
configuration, seeds, steps, data version, held-out accuracies and each file's sha256.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from ganrm_bench.harness.store.digests import file_digest
from ganrm_bench.mini import data
from ganrm_bench.mini.common import ANNOTATOR_FILE, GENERATOR_FILE, INFO_FILE, METRIC_FILE
from ganrm_bench.mini.nets import NULL_CLASS, SCHEDULER_CONFIG, UNET_CONFIG, AnnotatorNet, MetricNet, build_unet
from ganrm_bench.mini.sampling import sample, to_uint8

SEEDS = {"metric": 1001, "annotator": 2002, "generator": 3003, "eval": 4004}
DEFAULTS = {
    "generator_steps": 1000, "generator_batch": 128, "generator_lr": 1e-3, "generator_warmup": 50,
    "label_dropout": 0.1,
    "classifier_steps": 800, "classifier_batch": 64, "classifier_lr": 1e-3, "max_shift": 2,
    "eval_samples_per_digit": 20, "eval_steps": 25,
}  # fmt: skip


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """One thread and deterministic kernels while training; the caller's settings afterwards."""
    threads, strict = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(strict)


def as_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N,16,16] to float [N,1,16,16] in [0,1]."""
    return torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ±max_shift pixels (zero fill): the only augmentation."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (max_shift,) * 4)
    offs = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=gen)
    return torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offs.tolist())])


def train_classifier(make_net: type[torch.nn.Module], split: str, seed: int, steps: int, cfg: dict[str, Any]) -> torch.nn.Module:
    torch.manual_seed(seed)  # the initialisation's and dropout's stream
    net = make_net()
    gen = torch.Generator().manual_seed(seed)
    images, labels, _ = data.load_split(split)
    x, y = as_tensor(images), torch.from_numpy(labels)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["classifier_lr"], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (cfg["classifier_batch"],), generator=gen)
        loss = torch.nn.functional.cross_entropy(net(random_shift(x[idx], cfg["max_shift"], gen)), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: torch.nn.Module, splits: tuple[str, ...] = ("fid_ref", "ppd")) -> float:
    images = np.concatenate([data.load_split(s)[0] for s in splits])
    labels = np.concatenate([data.load_split(s)[1] for s in splits])
    pred = net.eval()(as_tensor(images)).argmax(1).numpy()
    return float((pred == labels).mean())


def train_generator(seed: int, steps: int, cfg: dict[str, Any]):
    from diffusers import DDPMScheduler

    torch.manual_seed(seed)  # the UNet's initialisation
    unet = build_unet(UNET_CONFIG)
    gen = torch.Generator().manual_seed(seed)
    noise_scheduler = DDPMScheduler(**SCHEDULER_CONFIG)
    images, labels, _ = data.load_split("train")
    x0_all, y_all = as_tensor(images) * 2 - 1, torch.from_numpy(labels)
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg["generator_lr"], weight_decay=1e-4)
    warm = cfg["generator_warmup"]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm))
    unet.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(x0_all), (cfg["generator_batch"],), generator=gen)
        x0, y = x0_all[idx], y_all[idx].clone()
        y[torch.rand(len(y), generator=gen) < cfg["label_dropout"]] = NULL_CLASS
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (len(x0),), generator=gen)
        x_t = noise_scheduler.add_noise(x0, noise, t)
        loss = torch.nn.functional.mse_loss(unet(x_t, t, class_labels=y).sample, noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    tail = losses[-50:] or [float("nan")]
    return unet.eval(), {"final_loss_mean_last50": float(np.mean(tail))}


@torch.no_grad()
def generator_alignment(unet, metric: MetricNet, per_digit: int, steps: int) -> dict[str, float]:
    """Fraction of generated digits the metric classifier reads as the prompted digit."""
    labels = torch.arange(10).repeat_interleave(per_digit)
    seeds = [SEEDS["eval"] * 100_000 + i for i in range(len(labels))]
    imgs = to_uint8(sample(unet, labels, seeds, steps=steps)).numpy()
    probs = torch.softmax(metric(as_tensor(imgs)), 1)
    return {
        "generated_read_as_prompted": float((probs.argmax(1) == labels).float().mean()),
        "generated_mean_prob_prompted": float(probs[torch.arange(len(labels)), labels].mean()),
    }


def save(module: torch.nn.Module, path: Path, meta: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}
    # one metadata key: safetensors writes its metadata map in arbitrary order, which would make
    # the file bytes (and so the digests) differ between identical runs
    save_file(state, str(path), metadata={"mini": json.dumps(meta, sort_keys=True)})


def train_all(out: Path, *, generator_steps: int | None = None, classifier_steps: int | None = None, evaluate: bool = True) -> dict[str, Any]:
    with deterministic():
        return _train_all(out, generator_steps, classifier_steps, evaluate)


def _train_all(out: Path, generator_steps: int | None, classifier_steps: int | None, evaluate: bool) -> dict[str, Any]:
    cfg = dict(DEFAULTS)
    if generator_steps is not None:
        cfg["generator_steps"] = generator_steps
    if classifier_steps is not None:
        cfg["classifier_steps"] = classifier_steps
    out.mkdir(parents=True, exist_ok=True)
    common = {"data_version": data.DATA_VERSION, "data_digest": data.data_digest()}
    timings, heldout = {}, {}

    t0 = time.time()
    metric = train_classifier(MetricNet, "train", SEEDS["metric"], cfg["classifier_steps"], cfg)
    timings["metric"] = time.time() - t0
    heldout["metric_accuracy"] = accuracy(metric)
    save(metric, out / METRIC_FILE, {**common, "arch": "MetricNet", "split": "train", "seed": SEEDS["metric"], "steps": cfg["classifier_steps"]})

    t0 = time.time()
    annot = train_classifier(AnnotatorNet, "annotator", SEEDS["annotator"], cfg["classifier_steps"], cfg)
    timings["annotator"] = time.time() - t0
    heldout["annotator_accuracy"] = accuracy(annot)
    save(annot, out / ANNOTATOR_FILE, {**common, "arch": "AnnotatorNet", "split": "annotator", "seed": SEEDS["annotator"], "steps": cfg["classifier_steps"]})

    t0 = time.time()
    unet, gen_stats = train_generator(SEEDS["generator"], cfg["generator_steps"], cfg)
    timings["generator"] = time.time() - t0
    save(unet, out / GENERATOR_FILE, {**common, "unet_config": UNET_CONFIG, "scheduler_config": SCHEDULER_CONFIG,
                                      "null_class": NULL_CLASS, "split": "train", "seed": SEEDS["generator"],
                                      "steps": cfg["generator_steps"]})  # fmt: skip
    if evaluate:
        t0 = time.time()
        heldout.update(generator_alignment(unet, metric, cfg["eval_samples_per_digit"], cfg["eval_steps"]))
        timings["eval"] = time.time() - t0

    info = {
        "command": f"python -m ganrm_bench.mini.train --out {out} --steps {cfg['generator_steps']} --classifier-steps {cfg['classifier_steps']}",
        "config": cfg,
        "seeds": SEEDS,
        **common,
        "split_sizes": data.SPLIT_SIZES,
        "unet_config": UNET_CONFIG,
        "unet_parameters": sum(p.numel() for p in unet.parameters()),
        "scheduler_config": SCHEDULER_CONFIG,
        "heldout": {**heldout, "heldout_splits": ["fid_ref", "ppd"]},
        "generator_training": gen_stats,
        "files": {f: file_digest(out / f) for f in (GENERATOR_FILE, METRIC_FILE, ANNOTATOR_FILE)},
        "versions": {"torch": torch.__version__, "diffusers": __import__("diffusers").__version__, "numpy": np.__version__,
                     "scikit-learn": __import__("sklearn").__version__},  # fmt: skip
        "train_seconds": {k: round(v, 1) for k, v in timings.items()},
    }
    (out / INFO_FILE).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return info


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="directory for the safetensors files and train_info.json")
    ap.add_argument("--steps", type=int, default=None, help=f"generator steps (default {DEFAULTS['generator_steps']})")
    ap.add_argument("--classifier-steps", type=int, default=None, help=f"metric/annotator steps (default {DEFAULTS['classifier_steps']})")
    ap.add_argument("--no-eval", action="store_true", help="skip the generated-sample evaluation")
    args = ap.parse_args(argv)
    info = train_all(args.out, generator_steps=args.steps, classifier_steps=args.classifier_steps, evaluate=not args.no_eval)
    print(json.dumps({"heldout": info["heldout"], "train_seconds": info["train_seconds"], "files": info["files"]}, indent=1))


if __name__ == "__main__":
    main()
