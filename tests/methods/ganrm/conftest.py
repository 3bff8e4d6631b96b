"""Fixtures for the GAN-RM tests: an isolated store and folders of synthetic images."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from tests.helpers.ganrm_fixtures import write_images  # noqa: E402


@pytest.fixture
def image_sets(tmp_path):
    """(ppd folder, generated folder): 16 bright images vs 24 dark ones."""
    ppd, gen = tmp_path / "ppd", tmp_path / "gen"
    write_images(ppd, 16, 190, seed=1)
    write_images(gen, 24, 70, seed=2)
    return ppd, gen
