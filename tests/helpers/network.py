"""`no_network()`: every socket connection attempted inside is recorded and refused at once. "Fails
fast offline" is then a count (no attempt was made), not a wall-clock bound that a slow machine
breaks; a pytest timeout guards against a hang."""

from __future__ import annotations

import contextlib
import socket
from typing import Iterator

import pytest


@contextlib.contextmanager
def no_network() -> Iterator[list]:
    attempts: list = []

    def refuse(self, address, *a, **k):
        attempts.append(address)
        raise OSError(f"test: no network (connection to {address!r} refused)")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket.socket, "connect_ex", refuse)
        yield attempts
