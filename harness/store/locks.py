"""Store locks that hold across the hosts of a shared file system (NFS, Lustre, GPFS, BeeGFS).

`flock` (filelock's default on Unix) is per host on several shared file systems: Lustre without
`-o flock` mounts locks client-locally, some NFS setups do the same or fail with ENOLCK. Two nodes
would then both "hold" a node's lock and train into the same checkpoint folder. A `SharedFSLock`
needs only what NFS (v3+) and Lustre guarantee across clients: an exclusive create
(O_CREAT|O_EXCL) and an atomic rename within a directory.

- acquire: create `<key>.lock` exclusively, holding host, pid and a token; a holder's thread
  touches it every `stale / 4` s (a heartbeat);
- a waiter that sees the same lock file (inode, mtime, size) unchanged for `stale` s of *its own*
  clock (no cross-host clock comparison) breaks it: renames it aside (atomic: one breaker wins),
  checks it renamed the file it judged stale, deletes it and retries;
- release: delete the file if it is still ours.

Which lock a store uses: GANRM_BENCH_LOCKS = auto (default: shared-FS locks when the store's
mount is a network/cluster file system, flock otherwise) | shared | flock. Artifacts are already
published by renaming a complete temp folder within the store (harness/store/artifacts.py), which is atomic
on these file systems too.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from functools import lru_cache
from pathlib import Path

from filelock import FileLock, Timeout

from ganrm_bench.harness.errors import UserError

ENV = "GANRM_BENCH_LOCKS"
STALE_ENV = "GANRM_BENCH_LOCK_STALE"
#: file system types whose `flock` may not hold across hosts (/proc/mounts names)
SHARED_FS = ("nfs", "nfs4", "lustre", "gpfs", "beegfs", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "fuse.glusterfs",
             "fuse.sshfs", "panfs", "wekafs", "fuse.juicefs", "9p")


def mount_type(path: str | Path) -> str:
    """The file system type of the mount holding `path` (from /proc/mounts; "" if unknown)."""
    return _mount_type(os.path.realpath(path))


@lru_cache(maxsize=64)
def _mount_type(target: str) -> str:
    try:
        best, kind = "", ""
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                point = parts[1].replace("\\040", " ")
                if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                    best, kind = point, parts[2]
        return kind
    except OSError:
        return ""


def lock_mode(root: str | Path) -> str:
    """"shared" or "flock" for a store at `root`, as GANRM_BENCH_LOCKS says (auto: by mount type)."""
    mode = os.environ.get(ENV, "auto").strip().lower()
    if mode in ("shared", "flock"):
        return mode
    if mode != "auto":
        raise UserError(f"{ENV}={mode!r}: must be auto, shared or flock",
                        hint="shared: lock files that hold across hosts (NFS, Lustre); flock: one host's locks")
    return "shared" if mount_type(root) in SHARED_FS else "flock"


def stale_seconds() -> float:
    return float(os.environ.get(STALE_ENV, "120"))


class SharedFSLock:
    """A lock file created with O_CREAT|O_EXCL, kept alive by a heartbeat; FileLock's interface
    (acquire(timeout) raising filelock.Timeout, release(), a context manager, reentrant)."""

    def __init__(self, path: str | Path, *, stale: float | None = None):
        self.path = Path(path)
        self.stale = stale_seconds() if stale is None else stale
        self.token = f"{socket.gethostname()} {os.getpid()} {uuid.uuid4().hex}"
        self._count = 0
        self._stop: threading.Event | None = None

    @property
    def is_locked(self) -> bool:
        return self._count > 0

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(self.token)
        return True

    def _heartbeat(self, stop: threading.Event) -> None:
        while not stop.wait(max(self.stale / 4, 0.01)):
            try:
                os.utime(self.path)
            except OSError:  # broken by a waiter that judged us stale (we were frozen): nothing to do
                return

    def _break_if_stale(self, seen: dict) -> None:
        """Break the current lock file if it has not changed for `stale` s of this process's clock."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            seen.clear()
            return
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        now = time.monotonic()
        if seen.get("sig") != sig:
            seen.update(sig=sig, since=now)
            return
        if now - seen["since"] < self.stale:
            return
        aside = self.path.with_name(f"{self.path.name}.stale.{uuid.uuid4().hex}")
        try:
            os.rename(self.path, aside)  # one breaker wins; the others find no file
        except FileNotFoundError:
            return
        try:
            if os.stat(aside).st_ino != st.st_ino:  # a fresh lock was taken meanwhile: put it back
                os.rename(aside, self.path)
                return
            os.unlink(aside)
        except FileNotFoundError:
            pass
        seen.clear()

    def acquire(self, timeout: float = -1, poll_interval: float = 0.05) -> "_Acquired":
        """Take the lock (waiting up to `timeout` s; < 0: forever); `with lock.acquire(...):` releases it."""
        if self._count:
            self._count += 1
            return _Acquired(self)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        seen: dict = {}
        delay = poll_interval
        while not self._try_create():
            self._break_if_stale(seen)
            if deadline is not None and time.monotonic() >= deadline:
                raise Timeout(str(self.path))
            time.sleep(delay if deadline is None else max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 1.5, max(self.stale / 8, poll_interval))
        self._count = 1
        self._stop = threading.Event()
        threading.Thread(target=self._heartbeat, args=(self._stop,), daemon=True).start()
        return _Acquired(self)

    def release(self, force: bool = False) -> None:
        if not self._count:
            return
        self._count = 0 if force else self._count - 1
        if self._count:
            return
        if self._stop is not None:
            self._stop.set()
        try:
            if self.path.read_text() == self.token:
                os.unlink(self.path)
        except OSError:
            pass

    def __enter__(self) -> "SharedFSLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class _Acquired:
    """What `acquire` returns (as filelock's): `with lock.acquire():` releases on exit."""

    def __init__(self, lock: SharedFSLock):
        self.lock = lock

    def __enter__(self) -> SharedFSLock:
        return self.lock

    def __exit__(self, *exc) -> None:
        self.lock.release()


def store_lock(root: str | Path, key: str) -> "FileLock | SharedFSLock":
    """The lock of `key` in the store at `root`, of the kind its file system needs (Store.file_lock)."""
    path = Path(root) / "locks" / f"{key}.lock"
    return SharedFSLock(path) if lock_mode(root) == "shared" else FileLock(str(path))
