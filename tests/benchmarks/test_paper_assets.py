"""fetch-assets / run --offline: every asset a spec needs is listed, fetched where the plugins look
(a stub transport writes placeholder files), recorded with digests, and checked without the
network; offline, fetch-assets fails fast naming every missing asset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.store.artifacts import Store
from ganrm_bench.harness.store.digests import file_digest
from tests.helpers.network import no_network
from tests.helpers.paper_fixtures import StubTransport, make_data_root


@pytest.fixture
def world(tmp_path, monkeypatch):
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.chdir(tmp_path)
    make_data_root(tmp_path)
    return tmp_path, Store(tmp_path / "store")


def test_paper_assets_of_table1(specs, world):
    """Table 1 needs the two pipelines, the two public DPO UNets, CLIP ViT-B/32 (GAN-RM and
    CLIPScore share one file), ImageReward + BERT's tokenizer, PickScore + its processor, HPS v2.0,
    clean-fid's Inception and the JourneyDB files."""
    from ganrm_bench.harness.spec.assets import spec_assets

    _, store = world
    found = {n.asset.id: n for n in spec_assets(specs["table1"], store)}
    hub = {i for i, n in found.items() if n.asset.kind == "hub_model"}
    assert hub == {"stable-diffusion-v1-5/stable-diffusion-v1-5", "stabilityai/stable-diffusion-xl-base-1.0",
                   "mhdang/dpo-sd1.5-text2image-v1", "mhdang/dpo-sdxl-text2image-v1", "timm/vit_base_patch32_clip_224.openai",
                   "THUDM/ImageReward", "bert-base-uncased", "yuvalkirstain/PickScore_v1",
                   "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", "xswu/HPSv2"}
    clip = found["timm/vit_base_patch32_clip_224.openai"]
    assert clip.asset.files == ("open_clip_model.safetensors",)
    assert {"scorers.ganrm_sd15", "scorers.ganrm_sdxl", "metrics.clip"} <= set(clip.needed_by)
    assert found["mhdang/dpo-sd1.5-text2image-v1"].asset.files == ("unet/config.json",)
    assert found["mhdang/dpo-sd1.5-text2image-v1"].needed_by == ["methods.sd15_diffusion_dpo"]
    assert found["THUDM/ImageReward"].asset.files == ("ImageReward.pt", "med_config.json")
    assert found["xswu/HPSv2"].asset.files == ("HPS_v2_compressed.pt",)  # v2.0 (journeydb.yaml)
    urls = [n.asset for n in found.values() if n.asset.kind == "url"]
    assert [u.id.rsplit("/", 1)[1] for u in urls] == ["inception-2015-12-05.pt"]
    local = {n.asset.dest for n in found.values() if n.asset.kind == "local"}
    assert local == {f"data/journeydb/{f}" for f in ("eval_prompts.tsv", "train_prompts.tsv", "rm_negative_prompts.tsv",
                                                     "rm_bootstrap_prompts.tsv", "ppd", "eval_images")}


@pytest.mark.timeout(120)
def test_paper_fetch_assets_offline_fails_fast_listing_every_missing_asset(specs, world, monkeypatch):
    from ganrm_bench.harness.spec.assets import fetch_assets, spec_assets

    _, store = world
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    expected = spec_assets(specs["table1"], store)
    transport = StubTransport()
    with no_network() as attempts, pytest.raises(UserError) as err:
        fetch_assets(specs["table1"], store, transport=transport)
    assert transport.calls == [] and attempts == []  # nothing fetched, nothing tried: it fails before the first download
    message = str(err.value)
    present = {"data/journeydb/eval_prompts.tsv", "data/journeydb/train_prompts.tsv", "data/journeydb/rm_negative_prompts.tsv",
               "data/journeydb/rm_bootstrap_prompts.tsv"}  # make_data_root wrote these
    missing = [n for n in expected if n.asset.dest not in present]
    assert f"{len(missing)} asset(s) of table1 missing" in message
    for n in missing:
        assert n.asset.describe() in message
    assert "HF_HUB_OFFLINE" in message and "fetch-assets" in message
    assert not (store.root / "assets" / "manifest.json").exists()


def test_paper_fetch_assets_dry_run_lists_without_downloading(specs, world):
    from ganrm_bench.harness.spec.assets import fetch_assets

    _, store = world
    transport = StubTransport()
    report = fetch_assets(specs["table8"], store, dry_run=True, transport=transport)
    assert transport.calls == []
    status = {e.asset.kind: set() for e in report.entries}
    for e in report.entries:
        status[e.asset.kind].add(e.status)
    assert status["hub_model"] == {"missing"}  # offline (the test default): nothing would be fetched
    assert status["local"] == {"present", "missing"}  # prompt tables written, image folders not
    assert "table8" in str(report)


def test_paper_fetch_then_check_offline(specs, world, monkeypatch):
    """After a fetch: the manifest holds each file's sha256, a second fetch downloads nothing,
    check_offline passes once the user's folders exist, and names an asset whose file vanished."""
    from ganrm_bench.harness.spec.assets import check_offline, fetch_assets
    from ganrm_bench.harness.store.assets import manifest_path

    root, store = world
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    transport = StubTransport()
    with pytest.raises(UserError, match="data/journeydb/ppd"):  # image folders only the user can provide
        fetch_assets(specs["table9"], store, transport=transport)
    first = list(transport.calls)
    assert len(first) == 8, first  # SD1.5, CLIP, ImageReward, BERT, PickScore, its processor, HPS, Inception
    manifest = json.loads(manifest_path(store).read_text())
    assert len(manifest) == 8
    for entry in manifest.values():
        loc = Path(entry["location"])
        for rel, digest in entry["files"].items():
            assert digest == file_digest(loc / rel if loc.is_dir() else loc)
    for folder in ("ppd", "eval_images"):
        (root / "data" / "journeydb" / folder).mkdir()
    report = fetch_assets(specs["table9"], store, transport=transport)
    assert transport.calls == first and {e.status for e in report.entries} == {"present"}
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert {e.status for e in check_offline(specs["table9"], store).entries} == {"present"}
    hps = next(e for e in report.entries if e.asset.id == "xswu/HPSv2")
    Path(hps.location, "HPS_v2_compressed.pt").unlink()
    with pytest.raises(UserError) as err:
        check_offline(specs["table9"], store)
    assert "1 asset(s) of table9 missing" in str(err.value) and "xswu/HPSv2" in str(err.value)
    assert "metrics.hps" in str(err.value)


def test_paper_select_files_prefers_safetensors():
    from ganrm_bench.harness.store.assets import Asset, select_files

    repo = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.bin", "unet/diffusion_pytorch_model.safetensors",
            "text_encoder/pytorch_model.bin", "text_encoder/model.safetensors", "vae/diffusion_pytorch_model.bin",
            "v1-5-pruned.ckpt", "unet/diffusion_pytorch_model.fp16.safetensors"]
    a = Asset("hub_model", "x/y", files=("model_index.json",),
              patterns=("model_index.json", "*/*.json", "*/diffusion_pytorch_model.safetensors", "*/diffusion_pytorch_model.bin",
                        "*/model.safetensors", "*/pytorch_model.bin"))
    assert select_files(repo, a) == ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                                     "text_encoder/model.safetensors", "vae/diffusion_pytorch_model.bin"]


def test_paper_cli_fetch_assets_offline_exit_code(tmp_path):
    """The CLI command: exit 2 and the list on stderr, with nothing cached (a hang ends at the
    subprocess timeout)."""
    import os
    import subprocess
    import sys

    from tests.helpers.paper_fixtures import BENCHMARKS, REPO

    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "TORCH_HOME": str(tmp_path / "torch"), "HF_HUB_OFFLINE": "1",
           "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "ganrm_bench.harness.app.cli.main", "fetch-assets", str(BENCHMARKS / "table4.yaml"),
                          "--cache", str(tmp_path / "store")], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 2, out.stdout + out.stderr
    for needle in ("stable-diffusion-v1-5/stable-diffusion-v1-5", "timm/vit_base_patch32_clip_224.openai", "data/journeydb/ppd",
                   "inception-2015-12-05.pt"):
        assert needle in out.stderr
    assert "Traceback" not in out.stderr


def test_paper_unresolved_fingerprint_names_the_absent_weights(specs, world):
    """Where the real fingerprint raises (no weights), the stand-in names the hub file instead."""
    from ganrm_bench.harness.errors import MissingWeightsError
    from ganrm_bench.harness.plugins.registry import REGISTRIES
    from ganrm_bench.harness.store.assets import unresolved_fingerprint

    e = specs["table9"].scorers["ganrm_sd15"]
    scorer = REGISTRIES["scorer"].get(e.scorer)(e.params)
    with pytest.raises(MissingWeightsError):
        scorer.fingerprint()
    fp = unresolved_fingerprint(scorer)
    assert fp["unresolved_assets"] == ["hub_model:timm/vit_base_patch32_clip_224.openai@main"]
    assert fp["params"]["variant"] == "bootstrap"
