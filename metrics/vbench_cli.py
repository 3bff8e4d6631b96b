"""`ganrm-bench env vbench`: VBench's own virtual environment (its pins clash with ours). Mounted on
the CLI through the `ganrm_bench.cli` entry point, like any plugin package's sub-command."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ganrm_bench.harness.store.artifacts import default_root
from ganrm_bench.metrics.vbench import create_env

app = typer.Typer(no_args_is_help=True, help="Separate environments for metrics whose packages clash with ours.")
out = Console()


@app.command("vbench")
def env_vbench(
    path: Optional[Path] = typer.Option(None, "--path", help="Where to create the venv (default: under the cache)."),
    cache: Optional[Path] = typer.Option(None, "--cache", envvar="GANRM_BENCH_CACHE", help="Artifact store root (default: the user cache dir)."),
    force: bool = typer.Option(False, "--force", help="Recreate it even if present."),
    pip_arg: Optional[list[str]] = typer.Option(None, "--pip-arg", help="Extra arguments for pip (repeatable)."),
) -> None:
    """Create the VBench environment (its own venv: vbench pins transformers 4.33 and numpy<2)."""
    env = create_env(path, cache_root=cache or default_root(), pip_args=tuple(pip_arg or ()), force=force, log=out.print)
    out.print(f"[green]vbench environment ready:[/green] {env}")
