"""What every command shares: the two consoles, the common options, logging, and how a spec
argument becomes a Spec (through the same service the Python API uses)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ganrm_bench.harness.app.services.specs import DEFAULT_SPEC, open_spec
from ganrm_bench.harness.runtime.distributed import rank_and_world
from ganrm_bench.harness.runtime.progress import Progress
from ganrm_bench.harness.spec.schema import Spec

out = Console()
err = Console(stderr=True)

CacheOpt = typer.Option(None, "--cache", envvar="GANRM_BENCH_CACHE", help="Artifact store root (default: the user cache dir).")
SpecArg = typer.Argument(None, help="A benchmark spec (YAML), or a shipped one by name (mini/table1). Default: the miniature world's Table 1.")
SetOpt = typer.Option(None, "--set", help="PATH=VALUE: override a spec value by its dotted YAML path (repeatable), "
                      "e.g. generators.mini.steps=8; validated like the spec, recorded in run.json, part of every key it changes.")


def spec_from(path: Optional[Path], sets: Optional[list[str]] = None) -> tuple[Spec, str]:
    """The spec a command names (default: the miniature world's Table 1, said on stderr), with its --set overrides."""
    say_default_spec(path)
    return open_spec(path, list(sets or []))


def say_default_spec(path: Optional[Path]) -> None:
    """A command given no spec runs the default one: say which, and where it is."""
    if path is None:
        err.print(f"no spec given: using the default, the miniature world's Table 1 ({DEFAULT_SPEC})", highlight=False, soft_wrap=True)


def progress_for(enabled: bool = True) -> Progress:
    """Bars on a terminal, periodic lines in a log, nothing on processes other than 0 of a launch."""
    return Progress.auto(sys.stderr, enabled=enabled and rank_and_world()[0] == 0)


def setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    # -v is about our work: third-party loggers (matplotlib, PIL, filelock, urllib3, ...) stay at WARNING
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)])
    logging.getLogger("ganrm_bench").setLevel(logging.DEBUG if verbose else logging.WARNING)


def print_plain(lines: list, console: Console = out) -> None:
    """Lines as they are: no markup parsing, no highlighting, no wrapping inside a line."""
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
