"""Small but real mini-world artifacts computed in THIS process, printed as sha256 prefixes (one JSON
line): what tests/harness/runtime/test_cpu_pin.py compares across emulated CPU classes (child
processes whose environment caps ATen / oneDNN / OpenBLAS / numpy at other instruction sets), with
the CPU pin (harness.runtime.cpu_pin) and without it (GANRM_BENCH_CPU_PIN=0).

    python benchmarks/perf/cpu_pin_probe.py [--only pool,rm,sft,dpo,fid] [--time]

pool  32 mini-generator samples at 6 DDIM steps (uint8 pixels)
rm    the GAN-RM fit (the spec's bootstrap recipe, dropout 0.2) on the pool's mini_conv features vs 32 PPD digits
sft   a 3-step full SFT fine-tune of the mini generator on 16 real digits (weights.safetensors bytes)
dpo   a 3-step full Diffusion-DPO fine-tune on 8 real-digit pairs
fid   the Fréchet distance between two halves of 128 reference digits' features (scipy sqrtm)
With --time, each artifact's seconds too (for benchmarks/perf/README.md's cost of the pin).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

import ganrm_bench  # noqa: F401  (first: pins the CPU kernels unless GANRM_BENCH_CPU_PIN=0)


def sha(data) -> str:
    import numpy as np

    if hasattr(data, "detach"):
        data = data.detach().contiguous().numpy()
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def probe(only: set[str]) -> tuple[dict[str, str], dict[str, float]]:
    import numpy as np
    import torch
    from PIL import Image

    from ganrm_bench.harness.plugins.base import Prompt, SampleRequest
    from ganrm_bench.harness.plugins.builtins import register_builtins
    from ganrm_bench.harness.plugins.registry import REGISTRIES
    from ganrm_bench.harness.runtime.context import Context
    from ganrm_bench.harness.store.artifacts import Store
    from ganrm_bench.methods.finetune.adapters import denoiser_for
    from ganrm_bench.methods.finetune.train import PreferencePair, Sample, finetune
    from ganrm_bench.methods.finetune.train import TrainConfig as FinetuneConfig
    from ganrm_bench.methods.ganrm.features import media_features
    from ganrm_bench.methods.ganrm.training import TrainConfig, fit_features
    from ganrm_bench.metrics.frechet import GaussianStats, frechet_distance
    from ganrm_bench.mini import data as D
    from ganrm_bench.mini.features import MiniDigitsFeatures
    from ganrm_bench.mini.generator import MiniDiffusion

    torch.set_num_threads(1)
    ctx = Context(store=Store(Path(tempfile.mkdtemp(prefix="cpu-pin-probe-"))), device="cpu")
    hashes, seconds = {}, {}

    def timed(name, fn):
        t = time.perf_counter()
        out = fn()
        seconds[name] = round(time.perf_counter() - t, 3)
        return out

    gen = MiniDiffusion(steps=6, batch_size=32, device="cpu")
    requests = [SampleRequest(Prompt(f"p{i}", f"a handwritten digit {i % 10}"), 0, 1000 + i) for i in range(32)]
    pool = timed("pool", lambda: np.stack([np.asarray(im) for im in gen.generate(requests, ctx)]))
    hashes["pool"] = sha(pool)
    ppd_gray, _, _ = D.load_split("ppd")
    if "rm" in only:
        register_builtins()
        backbone = REGISTRIES["backbone"].get("mini_conv")({"device": "cpu"})
        ppd = media_features(backbone, [Image.fromarray(a, "L").convert("RGB") for a in ppd_gray[:32]])
        fake = media_features(backbone, [Image.fromarray(a) for a in pool])
        result = timed("rm", lambda: fit_features(ppd, fake[:16], TrainConfig(epochs=10), unlabeled=fake[16:], seed=7))
        digest = hashlib.sha256()
        for state in result.states:
            for k in sorted(state):
                digest.update(k.encode() + state[k].detach().contiguous().numpy().tobytes())
        hashes["rm"] = digest.hexdigest()[:16]
    tr_gray, tr_lab, _ = D.load_split("train")
    samples = [Sample(f"a handwritten digit {int(lab)}", Image.fromarray(D.to_rgb(a))) for a, lab in zip(tr_gray[:16], tr_lab[:16])]
    pairs = [PreferencePair(s.prompt, s.image, Image.fromarray(D.to_rgb(ppd_gray[i]))) for i, s in enumerate(samples[:8])]
    for objective, data in (("sft", samples), ("dpo", pairs)):
        if objective not in only:
            continue
        cfg = FinetuneConfig(objective=objective, finetune="full", steps=3, batch_size=8, grad_accum=1, lr=1e-5, warmup_steps=0,
                             beta=5000, decode_threads=0)
        work = Path(tempfile.mkdtemp(prefix=f"cpu-pin-probe-{objective}-"))
        timed(objective, lambda: finetune(denoiser_for(gen), data, cfg, work / "out", work / "work"))
        hashes[objective] = sha((work / "out" / "weights.safetensors").read_bytes())
    if "fid" in only:
        fid_gray, _, _ = D.load_split("fid_ref")
        feats = timed("fid", lambda: MiniDigitsFeatures(device="cpu").features([D.to_rgb(a) for a in fid_gray[:128]]))
        (m1, c1), (m2, c2) = GaussianStats.of(feats[:64]).mean_cov(), GaussianStats.of(feats[64:]).mean_cov()
        hashes["fid"] = sha(np.array(frechet_distance(m1, c1, m2, c2)))
    return hashes, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="pool,rm,sft,dpo,fid")
    ap.add_argument("--time", action="store_true")
    args = ap.parse_args()
    hashes, seconds = probe(set(args.only.split(",")))
    from ganrm_bench.harness.runtime import cpu_pin

    st = cpu_pin.status()
    out = {"hashes": hashes, "class": cpu_pin.cpu_class(), "pinned": st["pinned"]}
    if args.time:
        out["seconds"] = seconds
    print(json.dumps(out))


if __name__ == "__main__":
    main()
