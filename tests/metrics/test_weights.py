"""Finding weights: hub cache only when offline (fast, clear error), URL files, identities, and
state dicts read without unpickling code."""

import pickle

import pytest

from ganrm_bench.harness.errors import MissingWeightsError, UserError
from ganrm_bench.harness.store.offline import is_offline
from ganrm_bench.metrics import weights as W


def test_offline_hub_miss_raises_at_once_naming_repo_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert is_offline()
    with pytest.raises(MissingWeightsError) as err:
        W.hub_file("someorg/somemodel", "weights.safetensors", model="Some model", cache_dir=str(tmp_path), offline=True)
    text = str(err.value)
    assert "someorg/somemodel" in text and "weights.safetensors" in text and "HF_HUB_OFFLINE" in text
    with pytest.raises(MissingWeightsError, match="someorg/somemodel"):
        W.hub_snapshot("someorg/somemodel", model="Some model", cache_dir=str(tmp_path), offline=True)


def test_ctx_offline_counts_as_offline(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("GANRM_BENCH_OFFLINE", raising=False)

    class Ctx:
        offline = True

    assert is_offline(Ctx()) and not is_offline(None)


def test_url_file_search_offline_error_and_download(tmp_path):
    src = tmp_path / "src" / "net.pt"
    src.parent.mkdir()
    src.write_bytes(b"weights")
    with pytest.raises(MissingWeightsError) as err:
        W.url_file(src.as_uri(), "net.pt", model="Net", search_dirs=[tmp_path / "a"], download_dir=tmp_path / "dl", offline=True)
    assert str(tmp_path / "dl" / "net.pt") in str(err.value)
    got = W.url_file(src.as_uri(), "net.pt", model="Net", search_dirs=[tmp_path / "a"], download_dir=tmp_path / "dl", offline=False)
    assert got == tmp_path / "dl" / "net.pt" and got.read_bytes() == b"weights"
    again = W.url_file("http://unreachable.invalid/net.pt", "net.pt", model="Net", search_dirs=[tmp_path / "dl"],
                       download_dir=tmp_path / "x", offline=True)
    assert again == got, "a file already in a search folder is used without any download"


def test_identity_of_hub_snapshots_and_local_files(tmp_path, ctx):
    snap = tmp_path / "models--org--name" / "snapshots" / "0123456789abcdef" / "sub" / "model.bin"
    snap.parent.mkdir(parents=True)
    snap.write_bytes(b"x")
    assert W.identity(snap) == "hf:org/name@0123456789abcdef/sub/model.bin"
    local = tmp_path / "w.bin"
    local.write_bytes(b"abc")
    import hashlib

    assert W.identity(local) == "sha256:" + hashlib.sha256(b"abc").hexdigest() == W.identity(local, ctx)
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"1")
    assert W.identity(folder) == W.identity(folder, ctx), "same identity with or without the store's memo"


def test_state_dicts_are_read_without_unpickling_code(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.ones(2)}, str(tmp_path / "a.safetensors"))
    assert torch.equal(W.load_torch_state(tmp_path / "a.safetensors")["w"], torch.ones(2))
    torch.save({"w": torch.zeros(3)}, tmp_path / "b.pt")
    assert torch.equal(W.load_torch_state(tmp_path / "b.pt")["w"], torch.zeros(3))

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "c.pt", "wb") as f:
        pickle.dump({"w": Evil()}, f)
    with pytest.raises(UserError, match="weights_only"):
        W.load_torch_state(tmp_path / "c.pt")


@pytest.mark.parametrize("module,extra,call", [
    ("nudenet", "safety", lambda: __import__("ganrm_bench.metrics.ip", fromlist=["x"]).NudeNetDetector(
        __import__("ganrm_bench.metrics.ip", fromlist=["x"]).IP().params).model_file()),
    ("cdfvd", "video", lambda: __import__("ganrm_bench.metrics.fvd", fromlist=["x"]).I3DFeatures().weights_file()),
    ("hpsv2", "reward-models", lambda: __import__("ganrm_bench.metrics.hps", fromlist=["x"]).import_hps_open_clip()),
    ("clip", "reward-models", lambda: __import__("ganrm_bench.metrics.image_reward", fromlist=["x"]).import_image_reward()),
])
def test_absent_extra_names_the_extra_to_install(monkeypatch, module, extra, call):
    import sys

    from ganrm_bench.harness.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail as if not installed
    for name in [m for m in sys.modules if m.startswith("hpsv2.")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(MissingExtraError) as err:
        call()
    assert f"ganrm-bench[{extra}]" in str(err.value)
