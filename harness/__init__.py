"""ganrm-bench core: specs, plugin registry, content-addressed store, runner, reports, CLI."""

__version__ = "0.1.0"
