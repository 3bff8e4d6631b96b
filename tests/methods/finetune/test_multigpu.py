"""Multi-GPU behaviour that a CPU machine can still pin: the training Accelerator exists before the
model it trains (so the model lands on the rank's device), and more."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from ganrm_bench.harness.engine.nodes import Node
from ganrm_bench.harness.plugins.base import Item, ItemSet
from ganrm_bench.methods import ops
from ganrm_bench.methods.finetune import adapters, train
from ganrm_bench.methods.finetune.train import TrainConfig


def test_finetune_op_builds_the_accelerator_before_the_model_on_its_device(ctx, monkeypatch):
    calls = []
    fake_acc = SimpleNamespace(device="cuda:1")
    monkeypatch.setattr(ops, "make_accelerator", lambda cfg: calls.append("accelerator") or fake_acc)
    monkeypatch.setattr(ops, "denoiser_for", lambda gen, ctx, device=None, **kw: calls.append(("model", device)) or "model")

    def fake_finetune(model, data, cfg, out, work, *, meta=None, accelerator=None):
        calls.append(("train", model, accelerator))
        Path(out).mkdir(parents=True, exist_ok=True)
        return {"steps": 0}

    monkeypatch.setattr(ops, "finetune", fake_finetune)
    items = [Item(f"k{i}", f"/x/{i}.png", f"p{i // 2}", "a prompt") for i in range(4)]
    winners, losers = ItemSet("w", tuple(items[0::2])), ItemSet("l", tuple(items[1::2]))
    cfg = TrainConfig(steps=1)
    node = Node(ops.FINETUNE, {"train": cfg.identity()}, label="dpo", obj=cfg)
    ops.FINETUNE.compute(node, ctx, {"generator": object(), "winners": winners, "losers": losers})
    assert calls == ["accelerator", ("model", "cuda:1"), ("train", "model", fake_acc)]


def test_initial_noise_comes_from_cpu_generators_whatever_the_pipelines_device(ctx):
    """A pool started on CPU and finished on a GPU must not mix two noise streams under its item keys."""
    import torch

    from ganrm_bench.harness.plugins.base import Prompt, SampleRequest
    from ganrm_bench.methods.generators.diffusers_image import DiffusersImageGenerator

    seen = []

    class GpuPipe:  # what the generator sees of a pipeline on cuda:1 (no GPU needed)
        device = torch.device("cuda", 1)

        def __call__(self, *, generator, prompt, **kwargs):
            seen.extend((g.device.type, g.initial_seed()) for g in generator)
            return SimpleNamespace(images=[__import__("PIL.Image").Image.new("RGB", (8, 8))] * len(prompt))

    g = DiffusersImageGenerator({"model": "/nonexistent", "batch_size": 2})
    g._pipe = GpuPipe()
    g.generate([SampleRequest(Prompt(f"p{i}", "x"), 0, 100 + i) for i in range(3)], ctx)
    assert seen == [("cpu", 100), ("cpu", 101), ("cpu", 102)]


def test_finetune_frees_its_trained_copy_and_releases_resident_models(ctx, tmp_path, mini_weights, monkeypatch):
    import gc
    import weakref

    from ganrm_bench.harness.plugins.base import Prompt, SampleRequest
    from ganrm_bench.harness.runtime import memory
    from ganrm_bench.mini.generator import MiniDiffusion

    g = MiniDiffusion(weights=str(mini_weights), steps=2, device="cpu")
    reqs = [SampleRequest(Prompt(f"p{i % 2}", f"a handwritten digit {i % 2}"), i // 2, 10 + i) for i in range(4)]
    items = []
    for r, im in zip(reqs, g.generate(reqs, ctx)):
        path = tmp_path / f"{r.seed}.png"
        im.save(path)
        items.append(Item(f"k{r.seed}", str(path), r.prompt.id, r.prompt.text, r.k, r.seed))
    trained = []
    real = adapters.denoiser_for
    monkeypatch.setattr(ops, "denoiser_for", lambda *a, **kw: trained.append(real(*a, **kw)) or trained[-1])
    evicted = []
    memory.next_node()
    memory.claim("a metric network", lambda: evicted.append(True))
    cfg = TrainConfig(objective="dpo", steps=1, batch_size=2, grad_accum=1, warmup_steps=0, lora_targets=("to_q",))
    node = Node(ops.FINETUNE, {"train": cfg.identity()}, label="dpo", obj=cfg)
    ops.FINETUNE.compute(node, ctx, {"generator": g, "winners": ItemSet("w", tuple(items[:2])), "losers": ItemSet("l", tuple(items[2:]))})
    assert evicted == [True]  # resident models left before training
    unet = weakref.ref(trained.pop().unet)
    gc.collect()
    assert unet() is None  # the trained copy (and its optimizer, DDP wrapper) did not outlive the node


class _NotMainProcess:
    """A real single-process Accelerator that says it is not process 0 (what rank 1 of a launch sees)."""

    def __init__(self, accelerator):
        self._acc = accelerator

    is_main_process = False

    def __getattr__(self, name):
        return getattr(self._acc, name)


def test_at_resume_only_process_0_rewrites_and_appends_the_log(tmp_path, mini_weights, ctx, monkeypatch):
    """Rank > 0 resuming must leave log.csv alone (every rank rewriting it at once raced)."""
    from ganrm_bench.harness.plugins.base import Prompt, SampleRequest
    from ganrm_bench.methods.finetune.train import Sample
    from ganrm_bench.mini.generator import MiniDiffusion

    g = MiniDiffusion(weights=str(mini_weights), steps=2, device="cpu")
    reqs = [SampleRequest(Prompt(f"p{i}", f"a handwritten digit {i}"), 0, 20 + i) for i in range(4)]
    samples = [Sample(r.prompt.text, im) for r, im in zip(reqs, g.generate(reqs, ctx))]
    cfg = TrainConfig(objective="sft", steps=4, batch_size=2, grad_accum=1, lr=1e-3, warmup_steps=0, checkpoint_every=2,
                      lora_targets=("to_q",))
    real, calls = train._forward_loss, {"n": 0}

    def dies_in_step_4(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "_forward_loss", dies_in_step_4)
    with pytest.raises(KeyboardInterrupt):
        train.train(adapters.denoiser_for(g), samples, cfg, tmp_path)
    monkeypatch.setattr(train, "_forward_loss", real)
    log = tmp_path / "log.csv"
    before, stat = log.read_bytes(), log.stat()
    assert len(before.decode().splitlines()) == 1 + 3  # header + steps 1-3; the checkpoint is at step 2
    resumed = train.train(adapters.denoiser_for(g), samples, cfg, tmp_path, accelerator=_NotMainProcess(train.make_accelerator(cfg)))
    assert resumed.resumed_from == 2 and [r["step"] for r in resumed.log] == [1, 2, 3, 4]
    assert log.read_bytes() == before and log.stat().st_mtime_ns == stat.st_mtime_ns  # untouched by the non-main process
    train.train(adapters.denoiser_for(g), samples, cfg, tmp_path)  # process 0 resuming
    rows = log.read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]  # process 0 cut step 3 and appended 3, 4
