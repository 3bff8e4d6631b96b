"""Progress: rich's bars on a terminal, tqdm's in a notebook without ipywidgets, a plain line every few
seconds in a log, nothing when turned off."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
from typing import Any, Callable, Iterator


def in_jupyter() -> bool:
    """True inside a Jupyter / Colab kernel (where rich draws through ipywidgets)."""
    shell = sys.modules.get("IPython") and getattr(sys.modules["IPython"], "get_ipython", lambda: None)()
    return shell is not None and (type(shell).__name__ == "ZMQInteractiveShell" or "google.colab" in str(type(shell)))


class Progress:
    """A thin wrapper over rich's progress bars; silent unless enabled. With `lines` (output that
    is not a terminal: `| tee log`, a batch job) a step that runs long prints a plain line every
    `interval` seconds and one when it ends, instead of bars; style "text" draws tqdm's plain bars,
    for a notebook without ipywidgets (rich's live display there only warns). `Progress.auto` picks;
    GANRM_BENCH_PROGRESS=0 turns all off, GANRM_BENCH_PROGRESS_INTERVAL sets the seconds."""

    def __init__(self, enabled: bool | None = None, style: str = "rich", *, lines: bool = False, interval: float | None = None,
                 stream: Any = None):
        if enabled is None:
            enabled = os.environ.get("GANRM_BENCH_PROGRESS", "auto") != "0"
        self.enabled = enabled
        self.style = style
        self.lines = lines
        self.interval = interval if interval is not None else float(os.environ.get("GANRM_BENCH_PROGRESS_INTERVAL", "5"))
        self.stream = stream
        self._rich = None

    @classmethod
    def auto(cls, stream: Any = None, *, enabled: bool = True) -> "Progress":
        """Bars on a terminal or in Jupyter, periodic lines when output goes to a file or pipe."""
        stream = stream or sys.stderr
        if not enabled or os.environ.get("GANRM_BENCH_PROGRESS", "1") == "0":
            return cls(False)
        if in_jupyter():
            return cls(True, style="rich" if importlib.util.find_spec("ipywidgets") else "text")
        return cls(True, lines=not (hasattr(stream, "isatty") and stream.isatty()), stream=stream)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
        if not self.enabled or not total:
            yield lambda n=1: None
            return
        if self.style == "text":
            from tqdm import tqdm

            with tqdm(total=total, desc=description, file=sys.stderr) as bar:
                yield lambda n=1: bar.update(n)
            return
        if self.lines:
            with self._line_task(description, total) as advance:
                yield advance
            return
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        with RichProgress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
            transient=False,
        ) as bar:
            tid = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(tid, n)

    @contextlib.contextmanager
    def _line_task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        start = last = time.monotonic()
        done = 0

        def say(final: bool = False) -> None:
            elapsed = time.monotonic() - start
            eta = f", ~{elapsed / done * (total - done):.0f}s left" if 0 < done < total and not final else ""
            print(f"{description}: {done}/{total} ({100 * done / total:.0f}%) {elapsed:.0f}s{eta}{' done' if final else ''}",
                  file=self.stream or sys.stderr, flush=True)

        def advance(n: int = 1) -> None:
            nonlocal done, last
            done += n
            now = time.monotonic()
            if now - last >= self.interval and done < total:
                last = now
                say()

        yield advance
        if time.monotonic() - start >= self.interval:  # short steps stay quiet
            say(final=True)
