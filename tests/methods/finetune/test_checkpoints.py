"""Checkpoints along training (eval_at): the last one is the final weights byte for byte, the one at
step s is byte for byte a separate run with steps = s (constant-with-warm-up LR), a resumed run
keeps them, rows that differ only in `checkpoint` share one training run, and bad steps are
one-line errors naming the field."""

import pytest

from ganrm_bench.harness.diagnostics.training_curves import training_curves
from ganrm_bench.harness.engine.evaluator import Evaluator
from ganrm_bench.harness.errors import UserError
from ganrm_bench.methods.finetune.adapters import denoiser_for
from ganrm_bench.methods.finetune.run_files import checkpoint_dir
from ganrm_bench.methods.finetune.train import TrainConfig, finetune
from ganrm_bench.methods.finetune.weights import WEIGHTS
from ganrm_bench.methods.ops import FINETUNE, FINETUNE_CHECKPOINT
from tests.helpers.method_rows import TRAIN, builder, write_spec
from tests.helpers.tiny_pipelines import mini_samples

CFG = dict(objective="sft", batch_size=2, grad_accum=1, lr=1e-3, warmup_steps=2, lr_scheduler="constant_with_warmup",
           lora_targets=("to_q", "to_k", "conv1"))


def weight_bytes(directory):
    return (directory / WEIGHTS).read_bytes()


def test_checkpoints_are_the_final_weights_and_the_shorter_runs_byte_for_byte(mini_generator, tmp_path, ctx):
    samples = mini_samples(mini_generator, ctx, n=6)
    long = TrainConfig(steps=4, eval_at=[1, 3, 4], **CFG)
    finetune(denoiser_for(mini_generator), samples, long, tmp_path / "long", tmp_path / "work-long")
    assert weight_bytes(checkpoint_dir(tmp_path / "long", 4)) == weight_bytes(tmp_path / "long")
    for s in (1, 3):
        finetune(denoiser_for(mini_generator), samples, TrainConfig(steps=s, **CFG), tmp_path / f"s{s}", tmp_path / f"work-{s}")
        assert weight_bytes(checkpoint_dir(tmp_path / "long", s)) == weight_bytes(tmp_path / f"s{s}")
    assert weight_bytes(checkpoint_dir(tmp_path / "long", 1)) != weight_bytes(checkpoint_dir(tmp_path / "long", 3))


def test_a_resumed_run_keeps_the_checkpoints_it_made_before_dying(mini_generator, tmp_path, ctx, monkeypatch):
    import ganrm_bench.methods.finetune.train as T

    samples = mini_samples(mini_generator, ctx, n=6)
    cfg = TrainConfig(steps=4, eval_at=[1, 3], checkpoint_every=2, **CFG)
    finetune(denoiser_for(mini_generator), samples, cfg, tmp_path / "straight", tmp_path / "a")
    real, calls = T._forward_loss, {"n": 0}

    def dies_in_step_4(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(T, "_forward_loss", dies_in_step_4)
    with pytest.raises(KeyboardInterrupt):
        finetune(denoiser_for(mini_generator), samples, cfg, tmp_path / "resumed", tmp_path / "b")
    monkeypatch.setattr(T, "_forward_loss", real)
    summary = finetune(denoiser_for(mini_generator), samples, cfg, tmp_path / "resumed", tmp_path / "b")
    assert summary["resumed_from"] == 2  # step 1's checkpoint was written before the resume point
    for s in (1, 3):
        assert weight_bytes(checkpoint_dir(tmp_path / "resumed", s)) == weight_bytes(checkpoint_dir(tmp_path / "straight", s))
    assert weight_bytes(tmp_path / "resumed") == weight_bytes(tmp_path / "straight")


@pytest.mark.parametrize("eval_at, says", [([0, 2], "must be ≥ 1"), ([2, 1], "strictly increasing"),
                                           ([1, 1], "strictly increasing"), ([1, 3], "beyond steps = 2")])
def test_bad_eval_at_is_a_one_line_error_naming_the_field(tmp_path, mini_weights, eval_at, says):
    gens = {"gen": {"generator": "mini_diffusion", "weights": str(mini_weights), "steps": 3, "device": "cpu"}}
    with pytest.raises(UserError) as err:
        write_spec(tmp_path, gens, {"dpo": {"method": "dpo", "generator": "gen", "prompts": "eval", "scorer": "rm",
                                            **TRAIN, "eval_at": eval_at}})
    problems = [ln for ln in str(err.value).splitlines() if ln.lstrip().startswith("- ")]
    assert len(problems) == 1 and "methods.dpo.eval_at:" in problems[0] and says in problems[0]


def test_a_checkpoint_must_be_a_kept_step(tmp_path, mini_weights):
    gens = {"gen": {"generator": "mini_diffusion", "weights": str(mini_weights), "steps": 3, "device": "cpu"}}
    with pytest.raises(UserError, match=r"methods.dpo.checkpoint: .*must be one of eval_at \[1\] or steps = 2, got 3"):
        write_spec(tmp_path, gens, {"dpo": {"method": "dpo", "generator": "gen", "prompts": "eval", "scorer": "rm",
                                            **TRAIN, "eval_at": [1], "checkpoint": 3}})


def test_checkpoint_rows_share_one_fine_tune_and_sample_its_checkpoint(tmp_path, mini_weights, ctx):
    gens = {"gen": {"generator": "mini_diffusion", "weights": str(mini_weights), "steps": 3, "device": "cpu"}}
    row = {"method": "dpo", "generator": "gen", "prompts": "eval", "scorer": "rm", **TRAIN, "eval_at": [1, 2]}
    spec = write_spec(tmp_path, gens, {"dpo": row, "dpo1": {**row, "checkpoint": 1}, "dpo2": {**row, "checkpoint": 2},
                                       "plain": {**row, "eval_at": []},
                                       "base": {"method": "base", "generator": "gen", "prompts": "eval"}})
    b, ev = builder(spec, ctx), Evaluator(ctx)
    tunes = {name: next(n for n in b.method(name).walk() if n.op is FINETUNE) for name in ("dpo", "dpo1", "dpo2", "plain")}
    assert tunes["dpo"].key == tunes["dpo1"].key == tunes["dpo2"].key  # one training run serves every checkpoint
    assert tunes["plain"].key != tunes["dpo"].key  # its artifact holds no checkpoints
    assert b.method("dpo2").key == b.method("dpo").key  # the last step is the fine-tune's own result
    ckpt = next(n for n in b.method("dpo1").walk() if n.op is FINETUNE_CHECKPOINT)
    assert ckpt.params == {"step": 1} and ckpt.inputs["weights"].key == tunes["dpo"].key
    rows = {r: b.method(r) for r in ("base", "dpo1", "dpo", "dpo2", "plain")}
    (curve,) = training_curves(rows, 3)  # the over-optimisation curve along training: base is step 0
    assert curve.rows == {"base": 0, "dpo1": 1, "dpo": 2} and curve.scorer.label == "rm"
    last, first = ev.value(b.method("dpo")), ev.value(b.method("dpo1"))
    assert ctx.counters["models fine-tuned"] == 1
    stored = ctx.store.path(tunes["dpo"].key)
    assert weight_bytes(checkpoint_dir(stored, 2)) == weight_bytes(stored)
    assert weight_bytes(checkpoint_dir(stored, 1)) != weight_bytes(stored)
    assert [it.seed for it in first] == [it.seed for it in last] and {it.key for it in first}.isdisjoint({it.key for it in last})
