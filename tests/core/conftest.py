"""Fixtures shared by the core tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def counters(tmp_path, monkeypatch):
    """A fresh folder where the toy plugins (toy_plugins.py) count their calls."""
    d = tmp_path / "counters"
    d.mkdir()
    monkeypatch.setenv("TOY_COUNTER_DIR", str(d))
    return d
