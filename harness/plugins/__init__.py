"""The plugin API: base classes every plugin implements, the registry, fingerprints, and the core's own data sources."""
