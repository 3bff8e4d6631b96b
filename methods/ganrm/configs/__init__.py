"""Packaged open_clip model configs (tiny random-init ViTs for tests and smoke runs)."""
