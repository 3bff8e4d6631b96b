"""The one rule for "is this reference a local path or a hub id": every plugin asks here.

A hub id is `name` or `org/name` (the Hub forbids a leading `.`); anything that exists on disk, starts
like a path (`/`, `.`, `~`) or has more than one `/` (`models/sd15/unet`) is a local path."""

from __future__ import annotations

from pathlib import Path


def is_local(ref: str) -> bool:
    """A local path (see the module docstring) rather than a hub id."""
    return Path(ref).expanduser().exists() or ref.startswith(("/", ".", "~")) or ref.count("/") > 1


def local_path(ref: str) -> Path:
    """A local reference as an absolute path (`~` expanded)."""
    return Path(ref).expanduser().resolve()
