"""The paper-scale specs validate, lay out the paper's tables, and share their artifacts: RM@10,
SFT and DPO of Table 1 are Table 4/7/8/9's rows too, and K = 2 / 6 reuse the K = 10 pools."""

from __future__ import annotations

import pytest

from tests.helpers.paper_fixtures import BENCHMARKS, TABLES


def cells_of(spec, ctx, rows=None):
    from ganrm_bench.harness.engine.builder import Builder
    from ganrm_bench.harness.engine.cells import build_cells

    b = Builder(spec, ctx, spec.seeds[0])
    if rows is None:
        return b, build_cells(spec, b)
    return b, {r: b.method(r) for r in rows}


def totals(nodes, ctx):
    from ganrm_bench.harness.engine.plan import plan, plan_totals

    return plan_totals(plan(list(nodes), ctx))


EXPECTED = {
    "table1": (["sd15_base", "sd15_diffusion_dpo", "sd15_rm10", "sd15_sft", "sd15_dpo_round3",
                "sdxl_base", "sdxl_diffusion_dpo", "sdxl_rm10", "sdxl_sft", "sdxl_dpo_round3"], ["fid", "ir", "ps", "hps", "clip"]),
    "table2": ([f"{g}_{m}_{p}" for g in ("sd15", "sdxl") for p in ("unsafe", "coco") for m in ("base", "rm10", "dpo")],
               ["ip", "fid", "clip"]),
    "table3": (["base", "dpo"], ["fvd", "lpips", "vbench", "lpips_div"]),
    "table4": (["sd15_rm10_naive", "sd15_rm10_average", "sd15_rm10_voting", "sd15_rm10"], ["fid", "ir", "ps", "hps", "clip"]),
    "table5": ([f"{g}_{r}" for g in ("sd15", "sdxl") for r in ("base", "dpo_round1", "dpo_round2", "dpo_round3")], ["fid"]),
    "table7": ([f"sd15_{m}{n}" for m in ("rm10", "sft", "dpo") for n in ("_n50", "_n250", "")], ["fid"]),
    "table8": (["sd15_rm2", "sd15_rm6", "sd15_rm10", "sd15_sft_k2", "sd15_sft_k6", "sd15_sft", "sd15_dpo_k2", "sd15_dpo_k6",
                "sd15_dpo"], ["fid"]),
    "table9": (["sd15_base", "sd15_dpo_round1", "sd15_dpo_round2", "sd15_dpo_round3"], ["fid", "ir", "ps", "hps", "clip"]),
}


@pytest.mark.parametrize("name", TABLES)
def test_paper_spec_validates_with_reference_for_every_cell(specs, name):
    spec = specs[name]
    rows, cols = EXPECTED[name]
    assert spec.table.rows == rows and spec.table.columns == cols
    # every row carries the paper's numbers, and every number has a row and column of the table
    assert set(spec.reference.values) == set(rows)
    assert all(set(v) <= set(cols) for v in spec.reference.values.values())
    assert spec.reference.source and spec.reference.notes


def test_paper_cli_validate_and_plan_name_the_missing_inputs(tmp_path, capsys, monkeypatch):
    """Without any weights or data (a fresh clone): `validate` passes; `plan` gives absent weights a
    provisional identity and counts absent data at the sizes the spec declares, listing each, and
    creates no store; `run --offline` names the missing assets. (fetch-assets lists all of them.)
    The commands go through `main` in-process (tests.helpers.clirun) on an empty hub cache and torch
    hub, as the `fetched_world` fixture patches them; the real entry point's offline exit 2 on a fresh
    clone is tests/benchmarks/test_paper_assets.py::test_paper_cli_fetch_assets_offline_exit_code's."""
    import huggingface_hub.constants as hc

    from tests.helpers.clirun import ganrm
    from tests.helpers.paper_fixtures import REPO

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("GANRM_BENCH_CACHE", str(tmp_path / "store"))
    for name in ("HF_HUB_OFFLINE", "GANRM_BENCH_OFFLINE"):  # `run --offline` sets them for the rest of the process: restored after
        monkeypatch.setenv(name, "1" if name == "HF_HUB_OFFLINE" else "0")
    monkeypatch.chdir(REPO)
    run = lambda *a: ganrm(capsys, *a, BENCHMARKS / "table8.yaml")  # noqa: E731
    code, _, err = run("validate")
    assert code == 0, err
    code, out, err = run("plan")
    assert code == 0, err
    assumed = " ".join(out.split("assumed sizes")[1].split())
    assert "jdb_eval: 5,000 prompts (expected_count; data/journeydb/eval_prompts.tsv is not here)" in assumed
    assert "jdb_train: 20,000 prompts" in assumed and "jdb_rm_neg: 500 prompts" in assumed
    assert not (tmp_path / "store").exists()
    code, _, err = run("run", "--offline")
    assert code == 2 and "Traceback" not in err and "missing" in err.lower()


@pytest.mark.parametrize("name", TABLES)
def test_paper_plan_has_every_cell(fetched_world, specs, name):
    spec = specs[name]
    _, cells = cells_of(spec, fetched_world["ctx"])
    rows, cols = EXPECTED[name]
    assert [(c.row, c.column) for c in cells] == [(r, c) for r in rows for c in cols]
    assert totals([c.node for c in cells], fetched_world["ctx"]).get("metric values to compute") == len(rows) * len(cols)


def test_paper_table1_generates_each_image_once(fetched_world, specs):
    """Images to generate for Table 1 with n prompts per file: per base model, the eval pool of
    K = 10 (base = its first sample), the DiffusionDPO samples, the train pool of K = 10 shared by
    SFT and round 1, the RM's negatives and bootstrap pool, SFT's samples, rounds 2 and 3 (pool +
    retrained RM's negatives and bootstrap pool each) and round 3's samples."""
    n = 4  # rows per prompt file (make_data_root)
    ctx = fetched_world["ctx"]
    _, cells = cells_of(specs["table1"], ctx)
    per_base = 10 * n + n + 10 * n + n + n + n + 2 * (10 * n + n + n) + n
    assert totals([c.node for c in cells], ctx) == {
        "images to generate": 2 * per_base, "metric values to compute": 50, "models to train": 2 * 3,
        "item sets to score": 2 * 4, "models to fine-tune": 2 * 4, "reward statistics": 2 * 3}


def _pool_items(node, ctx):
    from ganrm_bench.harness.engine.ops import POOL, pool_requests

    prompts = ctx_prompts(node.inputs["prompts"], ctx)
    return set(POOL.item_keys(node, pool_requests(prompts, node.params["k"], node.params["seed"])))


def ctx_prompts(node, ctx):
    return node.obj.load(ctx)


def _find(node, op_name, label_part=""):
    return [n for n in node.walk() if n.op.name == op_name and label_part in n.label]


def test_paper_rows_are_shared_across_tables(fetched_world, specs):
    """RM@10 of Table 1 is Table 4's bootstrap row, Table 7's N = 500 and Table 8's K = 10 row (one
    node key); SFT / DPO at K = 10 are the same artifacts in Tables 7 and 8; Table 8's single-round
    DPO is Table 9's round 1; round 3 of Table 9 is Table 1's DPO row."""
    ctx = fetched_world["ctx"]
    keys = {}
    for name in ("table1", "table4", "table7", "table8", "table9", "table5"):
        _, cells = cells_of(specs[name], ctx)
        keys[name] = {c.row: c.node.inputs["samples"].key for c in cells}
    for t in ("table4", "table7", "table8"):
        assert keys[t]["sd15_rm10"] == keys["table1"]["sd15_rm10"]
    assert keys["table7"]["sd15_sft"] == keys["table8"]["sd15_sft"] == keys["table1"]["sd15_sft"]
    assert keys["table7"]["sd15_dpo"] == keys["table8"]["sd15_dpo"]
    assert keys["table9"]["sd15_dpo_round3"] == keys["table1"]["sd15_dpo_round3"] == keys["table5"]["sd15_dpo_round3"]
    # round 1 of multi-round DPO samples from the same fine-tuned generator as single-round DPO
    b, nodes = cells_of(specs["table9"], ctx, rows=["sd15_dpo_round1", "sd15_dpo"])
    assert nodes["sd15_dpo_round1"].inputs["samples"].key == nodes["sd15_dpo"].key


def test_paper_one_k10_pool_serves_rm_sft_dpo_and_table8(fetched_world, specs):
    """SFT and DPO fine-tune from one K = 10 pool (same node); RM@K for K = 2 / 6 and the K = 2 / 6
    fine-tunings take the first samples of the K = 10 pools, so beyond its K = 10 rows Table 8 only
    generates the evaluation samples of its 4 other fine-tuned models; base is the first sample of
    RM@10's pool."""
    ctx = fetched_world["ctx"]
    spec = specs["table8"]
    b, nodes = cells_of(spec, ctx, rows=[r for r in spec.table.rows] + ["sd15_base"])
    train_pools = {r: {n.key for n in nodes[r].walk() if n.op.name == "pool" and n.params["k"] > 1 and "jdb_train" in n.label}
                   for r in ("sd15_sft", "sd15_dpo", "sd15_sft_k2", "sd15_dpo_k6")}
    assert train_pools["sd15_sft"] == train_pools["sd15_dpo"] and len(train_pools["sd15_sft"]) == 1
    k10_train = next(n for n in nodes["sd15_sft"].walk() if n.key in train_pools["sd15_sft"])
    k10_eval = next(n for n in nodes["sd15_rm10"].walk() if n.op.name == "pool" and n.params["k"] == 10)
    for row, pool_of in (("sd15_sft_k2", k10_train), ("sd15_dpo_k6", k10_train), ("sd15_rm2", k10_eval), ("sd15_rm6", k10_eval),
                         ("sd15_base", k10_eval)):
        pools = [n for n in nodes[row].walk() if n.op.name == "pool" and n.inputs["generator"].key == pool_of.inputs["generator"].key
                 and n.inputs["prompts"].key == pool_of.inputs["prompts"].key]
        assert len(pools) == 1 and pools[0].params["k"] < 10
        assert _pool_items(pools[0], ctx) < _pool_items(pool_of, ctx), row
    k10_rows = ["sd15_rm10", "sd15_sft", "sd15_dpo"]
    all_rows = totals([nodes[r] for r in spec.table.rows], ctx)
    n = 4  # prompts per file (make_data_root)
    assert all_rows["images to generate"] == totals([nodes[r] for r in k10_rows], ctx)["images to generate"] + 4 * n
    assert all_rows["models to fine-tune"] == 6 and all_rows["models to train"] == 1  # one GAN-RM for all K


def test_paper_table7_trains_one_rm_per_ppd_size_on_nested_data(fetched_world, specs):
    ctx = fetched_world["ctx"]
    b, nodes = cells_of(specs["table7"], ctx, rows=["sd15_rm10_n50", "sd15_rm10_n250", "sd15_rm10"])
    rms = {r: _find(nodes[r], "train_scorer")[0] for r in nodes}
    assert len({n.key for n in rms.values()}) == 3
    negs = {r: _pool_items(rm.inputs["negatives"], ctx) for r, rm in rms.items()}
    assert negs["sd15_rm10_n50"] <= negs["sd15_rm10_n250"] <= negs["sd15_rm10"]  # N raw outputs, nested


def test_paper_table2_each_row_on_its_prompt_set(fetched_world, specs):
    """Safety rows share the safety RM and DPO generator across the CoProV2 and COCO prompt sets."""
    ctx = fetched_world["ctx"]
    b, nodes = cells_of(specs["table2"], ctx, rows=["sd15_dpo_unsafe", "sd15_dpo_coco", "sd15_rm10_unsafe", "sd15_rm10_coco"])
    tuned = {r: _find(nodes[r], "finetune")[0].key for r in ("sd15_dpo_unsafe", "sd15_dpo_coco")}
    assert tuned["sd15_dpo_unsafe"] == tuned["sd15_dpo_coco"]
    rms = {r: _find(nodes[r], "train_scorer")[0].key for r in nodes}
    assert len(set(rms.values())) == 1
    assert nodes["sd15_dpo_unsafe"].inputs["prompts"].label == "unsafe_test"
    assert nodes["sd15_dpo_coco"].inputs["prompts"].label == "coco"


def test_paper_table3_dpo_row_plans(fetched_world, specs):
    """Video DPO plans: one fine-tuning of the video generator on its K = 3 training pool scored by
    the video GAN-RM, then 2 videos per eval prompt (LPIPS diversity) from the fine-tuned one."""
    from ganrm_bench.harness.engine.plan import plan

    ctx = fetched_world["ctx"]
    b, nodes = cells_of(specs["table3"], ctx, rows=["dpo"])
    tunes = _find(nodes["dpo"], "finetune")
    assert len(tunes) == 1 and tunes[0].inputs["generator"].obj.modality == "video"
    assert tunes[0].params["train"]["objective"] == "dpo" and tunes[0].params["train"]["finetune"] == "full"
    assert any(e.node.key == tunes[0].key and e.status == "compute" for e in plan([nodes["dpo"]], ctx))
    assert nodes["dpo"].params["k"] == 2 and nodes["dpo"].inputs["generator"].op.name == "finetuned_generator"
    n = 4  # prompts per file (make_data_root)
    assert totals(nodes.values(), ctx) == {"images to generate": 3 * n + n + n + 2 * n, "models to train": 1,
                                           "item sets to score": 1, "models to fine-tune": 1}


def test_paper_table3_base_row_plans(fetched_world, specs):
    ctx = fetched_world["ctx"]
    b, nodes = cells_of(specs["table3"], ctx, rows=["base"])
    assert totals(nodes.values(), ctx) == {"images to generate": 2 * 4}  # 2 per prompt, for LPIPS diversity
    assert nodes["base"].inputs["generator"].obj.modality == "video"
