"""Fixtures for the GAN-RM tests: an isolated store and folders of synthetic images."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402

from ganrm_fixtures import write_images  # noqa: E402
from ganrm_bench.harness.runtime.context import Context  # noqa: E402
from ganrm_bench.harness.store.artifacts import Store  # noqa: E402


@pytest.fixture
def ctx(tmp_path) -> Context:
    return Context(store=Store(tmp_path / "store"))


@pytest.fixture
def image_sets(tmp_path):
    """(ppd folder, generated folder): 16 bright images vs 24 dark ones."""
    ppd, gen = tmp_path / "ppd", tmp_path / "gen"
    write_images(ppd, 16, 190, seed=1)
    write_images(gen, 24, 70, seed=2)
    return ppd, gen
