import pytest

from ganrm_bench.harness.errors import UnknownPluginError
from ganrm_bench.harness.plugins.registry import Registry


def test_register_alias_and_lookup():
    reg = Registry("metric")

    @reg.register("fid", aliases=("frechet",))
    class FID:
        """Fréchet distance."""

    assert reg.get("fid") is FID and reg.get("frechet") is FID
    assert FID.name == "fid"
    assert [e.description for e in reg.entries()] == ["Fréchet distance."]


def test_did_you_mean_and_known_list():
    reg = Registry("method")
    reg.add("rm_at_k", object())
    reg.add("dpo", object())
    with pytest.raises(UnknownPluginError, match="did you mean 'rm_at_k'"):
        reg.get("rm_at_kk")
    with pytest.raises(UnknownPluginError, match="known methods: dpo, rm_at_k"):
        reg.get("zzzzzz")


def test_lazy_entry_resolves_on_first_use(monkeypatch):
    reg = Registry("metric")
    reg.add("ordered", "collections:OrderedDict")
    entry = next(reg.entries())
    assert isinstance(entry.target, str)  # not imported yet
    import collections

    assert reg.get("ordered") is collections.OrderedDict
    assert entry.description  # taken from the docstring once resolved


def test_a_plugin_must_subclass_its_kinds_base_class():
    """A class of the wrong kind fails where it registers (decorator) or, lazily named, where it is first
    used; the message names the plugin, its class and the base to derive from."""
    from ganrm_bench.harness.errors import UserError
    from ganrm_bench.harness.plugins.base import Metric, PluginParams
    from ganrm_bench.harness.plugins.registry import METHODS

    reg = Registry("metric", Metric)

    @reg.register("ok")
    class Ok(Metric):
        Params = PluginParams

    assert reg.get("ok") is Ok
    with pytest.raises(UserError, match=r"plugin 'bad' .* not a subclass of ganrm_bench.harness.plugins.base.Metric"):
        @reg.register("bad")
        class Bad:  # noqa: F841 - registering it is the test
            pass
    reg.add("lazy_bad", "collections:OrderedDict")
    with pytest.raises(UserError, match="collections.OrderedDict, not a subclass of .*Metric"):
        reg.get("lazy_bad")
    assert METHODS.base.__name__ == "Method"

