"""The `ganrm-bench` command line: one module per command (harness.app.cli.*), each parsing its
arguments, calling a service (harness.app.services) and printing. Sub-commands that live with
their plugins (GAN-RM's `rm`, VBench's `env`) arrive through the `ganrm_bench.cli` entry points, as a
third party's would."""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, entry_points, version

import typer
from rich.markup import escape

from ganrm_bench.harness.app.cli import cache, plan, plugins, results, run
from ganrm_bench.harness.app.cli.common import err, out
from ganrm_bench.harness.app.study.cli import app as study_app
from ganrm_bench.harness.errors import UserError

CLI_GROUP = "ganrm_bench.cli"

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Train, apply and judge reward models for visual generators.")
app.command()(plan.validate)
app.command("list")(plugins.list_plugins)
app.command()(plan.plan)
app.command()(run.run)
app.command("fetch-assets")(cache.fetch_assets_cmd)
app.command()(results.report)
app.command()(results.check)
app.command()(results.baseline)
app.add_typer(cache.app, name="cache")
app.add_typer(study_app, name="study")


def _version(value: bool) -> None:
    if value:
        try:
            out.print(f"ganrm-bench {version('ganrm-bench')}", highlight=False)
        except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
            out.print("ganrm-bench (not installed)")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """Train, apply and judge reward models for visual generators."""


def mount_plugin_apps() -> None:
    """Sub-commands published by plugin packages (`ganrm_bench.cli` entry points: name = "module:typer_app");
    one whose optional dependency is missing is left out."""
    mounted = {g.name for g in app.registered_groups}
    for ep in sorted(entry_points(group=CLI_GROUP), key=lambda e: e.name):
        if ep.name in mounted:
            continue
        try:
            sub = ep.load()
        except ModuleNotFoundError as exc:  # an optional extra that is not installed
            if exc.name and not exc.name.startswith("ganrm_bench"):
                continue
            raise
        app.add_typer(sub, name=ep.name)
        mounted.add(ep.name)


def main() -> None:
    """Entry point: a UserError prints as one clear message (exit 2), never a traceback."""
    mount_plugin_apps()
    try:
        app()
    except UserError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
