"""`ganrm-bench rm train` / `ganrm-bench rm score`: GAN-RM from the command line.

    ganrm-bench rm train PPD_DIR GENERATED_DIR --out ckpt/ [--unlabeled MORE_DIR] [--variant bootstrap]
    ganrm-bench rm score ckpt/ img1.png some_folder/ [--csv scores.csv]

Image sets are folders (png/jpg/jpeg/webp) or tables (.csv/.tsv/.parquet/.jsonl with a `path`
column, relative paths resolved against the table's folder).
"""

from __future__ import annotations

import functools
import re
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import pandas as pd
import typer
import yaml
from pydantic import ValidationError

from ganrm_bench.harness.errors import UserError
from ganrm_bench.harness.plugins.builtins import register_builtins
from ganrm_bench.harness.plugins.registry import REGISTRIES
from ganrm_bench.harness.plugins.sources import FolderImages, TableImages, item_set, items_from_files
from ganrm_bench.harness.runtime.context import Context
from ganrm_bench.harness.runtime.devices import resolve_device
from ganrm_bench.harness.runtime.distributed import rank_and_world
from ganrm_bench.harness.runtime.progress import Progress
from ganrm_bench.harness.spec.check import format_error
from ganrm_bench.harness.store.artifacts import Store
from ganrm_bench.methods.ganrm.backbones import build_backbone
from ganrm_bench.methods.ganrm.model import GanRM
from ganrm_bench.methods.ganrm.training import TrainConfig

app = typer.Typer(help="GAN-RM: train a reward model from preference proxy data, score images.", no_args_is_help=True, add_completion=False)

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".jsonl", ".json")


class VariantChoice(str, Enum):
    naive = "naive"
    average = "average"
    voting = "voting"
    bootstrap = "bootstrap"


def _user_errors(fn):
    """Print a UserError as one clear message (exit code 2) instead of a traceback; hints written
    in spec syntax (`checkpoint: PATH`, `skip_bad: true`) are shown as this command's flags."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {as_flags(str(exc), kwargs.get('backbone'))}", err=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def as_flags(text: str, backbone: str | None) -> str:
    """Spec syntax in a message, as the rm commands' flags: `skip_bad: true` → `--skip-bad`,
    `KEY: VALUE` for a backbone parameter → `-B KEY=VALUE`."""
    text = text.replace("`skip_bad: true` on the entry", "--skip-bad").replace("skip_bad / --skip-bad on the source", "--skip-bad")
    fields = set()
    if backbone:
        try:
            fields = set(getattr(REGISTRIES["backbone"].get(backbone), "Params").model_fields)
        except Exception:  # noqa: BLE001 - an unknown backbone has its own error
            fields = set()
    return re.sub(r"`(\w+): ([^`]+)`", lambda m: f"`-B {m[1]}={m[2]}`" if m[1] in fields else m[0], text)


def params_error(exc, model, flag: str) -> UserError:
    """A pydantic ValidationError of command-line values as one line naming the flag."""
    return UserError("; ".join(flag.format(msg=format_error(e, model)) for e in exc.errors()))


def make_context(cache: Optional[Path], device: str):
    show = rank_and_world()[0] == 0  # under a launcher, process 0 alone draws progress
    return Context(store=Store(cache), device=resolve_device(device), progress=Progress.auto(sys.stderr, enabled=show))


def image_source(path: Path, *, recursive: bool, skip_bad: bool):
    """A folder or a table of paths, as an ImageSource plugin."""
    if path.is_dir():
        return FolderImages(path=str(path), recursive=recursive, skip_bad=skip_bad)
    if path.is_file() and path.suffix.lower() in TABLE_SUFFIXES:
        return TableImages(path=str(path), skip_bad=skip_bad)
    if not path.exists():
        raise UserError(f"{path} does not exist")
    raise UserError(f"{path} is neither a folder of images nor a table ({', '.join(TABLE_SUFFIXES)})")


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs; values parsed as YAML scalars ("none"/"null" → None, numbers, booleans)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise UserError(f"backbone parameter {pair!r} is not KEY=VALUE")
        out[key.strip()] = None if raw.strip().lower() in ("none", "null", "~") else yaml.safe_load(raw)
    return out


@app.command()
@_user_errors
def train(
    ppd: Path = typer.Argument(..., help="preference proxy data: an image folder or a table of paths"),
    generated: Path = typer.Argument(..., help="generator outputs (negatives): an image folder or a table of paths"),
    out: Path = typer.Option(..., "--out", "-o", help="checkpoint directory to write (config.json + rpl.safetensors)"),
    unlabeled: Optional[Path] = typer.Option(None, "--unlabeled", help="more generator outputs to rank for bootstrapping (default: the negatives left over by class balancing)"),
    backbone: str = typer.Option("openclip", "--backbone", help="backbone plugin name"),
    backbone_param: list[str] = typer.Option([], "--backbone-param", "-B", help="backbone parameter KEY=VALUE (repeatable), e.g. -B checkpoint=/path/open_clip_model.safetensors"),
    variant: VariantChoice = typer.Option(VariantChoice.bootstrap, "--variant", help="RM variant (paper Table 4)"),
    seed: int = typer.Option(0, "--seed"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="epochs per training stage (default 30)"),
    steps: Optional[int] = typer.Option(None, "--steps", help="optimizer steps per stage (overrides --epochs)"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="look for images in sub-folders too"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="skip (and count) unreadable image files instead of stopping"),
    cache: Optional[Path] = typer.Option(None, "--cache", help="store root for cached features (default $GANRM_BENCH_CACHE or the user cache dir)"),
    device: str = typer.Option("auto", "--device"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace a checkpoint already in --out"),
):
    """Train GAN-RM: PPD = label 1, generated = label 0, on cached backbone features."""
    _refuse_overwrite(out, overwrite)
    ctx = make_context(cache, device)
    params = parse_params(backbone_param)
    try:
        bb = build_backbone(backbone, {**({"device": device} if _accepts_device(backbone) and "device" not in params else {}), **params})
    except ValidationError as exc:
        raise params_error(exc, REGISTRIES["backbone"].get(backbone).Params, "-B {msg}") from None
    sets = {
        name: image_source(path, recursive=recursive, skip_bad=skip_bad).load(ctx) if path is not None else None
        for name, path in (("ppd", ppd), ("generated", generated), ("unlabeled", unlabeled))
    }
    overrides = {k: v for k, v in {"epochs": epochs, "steps": steps, "lr": lr}.items() if v is not None}
    try:
        cfg = TrainConfig(variant=variant.value, seed=seed, **overrides)
    except ValidationError as exc:
        raise params_error(exc, TrainConfig, "--{msg}") from None
    rm = GanRM.train(sets["ppd"], sets["generated"], unlabeled=sets["unlabeled"], backbone=bb, ctx=ctx, config=cfg)
    rm.save(out)
    _print_metrics(rm.metrics, ctx)
    typer.echo(f"saved GAN-RM ({variant.value}) to {out}")


def _refuse_overwrite(out: Path, overwrite: bool) -> None:
    """A trained checkpoint is never replaced silently (checked before training, not after)."""
    if not overwrite and out.is_dir() and any(out.iterdir()):
        raise UserError(f"--out {out} already holds files (a checkpoint?)", hint="choose another --out, or pass --overwrite to replace it")


def _accepts_device(backbone: str) -> bool:
    register_builtins()
    cls = REGISTRIES["backbone"].get(backbone)
    return "device" in getattr(cls.Params, "model_fields", {})


def _print_metrics(metrics: dict[str, Any], ctx: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="GAN-RM training")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    for key, value in ctx.counters.items():
        table.add_row(key, str(value))
    Console(file=sys.stdout, width=100).print(table)


@app.command()
@_user_errors
def score(
    ckpt: Path = typer.Argument(..., help="a GAN-RM checkpoint directory"),
    images: list[Path] = typer.Argument(..., help="image files and/or folders"),
    csv: Optional[Path] = typer.Option(None, "--csv", help="write path,score rows here instead of printing a table"),
    recursive: bool = typer.Option(False, "--recursive", "-r"),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="skip (and count) unreadable files"),
    cache: Optional[Path] = typer.Option(None, "--cache"),
    device: Optional[str] = typer.Option(None, "--device"),
):
    """Score images with a trained GAN-RM (P(preference proxy data), higher is better)."""
    ctx = make_context(cache, device or "auto")
    rm = GanRM.load(ckpt, device=device)
    items = []
    for path in images:
        if path.is_dir():
            items.extend(FolderImages(path=str(path), recursive=recursive, skip_bad=skip_bad).load(ctx).items)
        else:
            found, _ = items_from_files([(path, {})], ctx, what="score", skip_bad=skip_bad, full_check=True)
            items.extend(found)
    if not items:
        raise UserError("no readable images to score")
    scores = rm.score_tensor(list(item_set(items).items), ctx).tolist()
    if csv is not None:
        pd.DataFrame({"path": [it.path for it in items], "score": scores}).to_csv(csv, index=False)
        typer.echo(f"wrote {len(scores)} scores to {csv}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"GAN-RM scores ({ckpt})")
    table.add_column("image")
    table.add_column("score", justify="right")
    for it, s in zip(items, scores):
        table.add_row(it.path, f"{s:.4f}")
    Console(file=sys.stdout, width=200).print(table)
