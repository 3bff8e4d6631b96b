import pytest

from ganrm_bench.harness.errors import UnknownPluginError
from ganrm_bench.harness.plugins.registry import Registry


def test_register_alias_and_lookup():
    reg = Registry("metric", "ganrm_bench.test_none")

    @reg.register("fid", aliases=("frechet",))
    class FID:
        """Fréchet distance."""

    assert reg.get("fid") is FID and reg.get("frechet") is FID
    assert FID.name == "fid"
    assert [e.description for e in reg.entries()] == ["Fréchet distance."]


def test_did_you_mean_and_known_list():
    reg = Registry("method", "ganrm_bench.test_none")
    reg.add("rm_at_k", object())
    reg.add("dpo", object())
    with pytest.raises(UnknownPluginError, match="did you mean 'rm_at_k'"):
        reg.get("rm_at_kk")
    with pytest.raises(UnknownPluginError, match="known methods: dpo, rm_at_k"):
        reg.get("zzzzzz")


def test_lazy_entry_resolves_on_first_use(monkeypatch):
    reg = Registry("metric", "ganrm_bench.test_none")
    reg.add("ordered", "collections:OrderedDict")
    entry = next(reg.entries())
    assert isinstance(entry.target, str)  # not imported yet
    import collections

    assert reg.get("ordered") is collections.OrderedDict
    assert entry.description  # taken from the docstring once resolved


def test_entry_points_group_is_read(monkeypatch):
    from importlib.metadata import EntryPoint

    import ganrm_bench.harness.plugins.registry as registry_module

    eps = [EntryPoint("third_party", "collections:Counter", "metrics")]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [e for e in eps if e.group == group])
    reg = Registry("metric", "metrics")
    import collections

    assert reg.get("third_party") is collections.Counter
    assert next(reg.entries()).origin.startswith("entry point")
