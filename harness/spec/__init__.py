"""Benchmark specs: the schema, loading (include, --set overrides, local plugins), validation, and the assets a spec needs."""
