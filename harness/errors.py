"""User-facing errors: the CLI prints these without a traceback and exits with their code."""

from __future__ import annotations

import difflib
import importlib


class UserError(Exception):
    """A problem the user can fix (bad spec, missing file, absent weights). Exit code 2."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class SpecError(UserError):
    """A spec that does not validate; carries every problem with its YAML path."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems))


class UnreadableFilesError(UserError):
    """Input files that do not open or decode (all of them listed, not just the first)."""

    def __init__(self, message: str, files: list[str], *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.files = files


class UnknownPluginError(UserError):
    """A plugin name that is not registered; the message carries a did-you-mean."""


class MissingExtraError(UserError):
    """A plugin whose optional dependencies are not installed."""

    def __init__(self, plugin: str, extra: str, module: str):
        super().__init__(
            f"plugin {plugin!r} needs the Python package {module!r}, which is not installed",
            hint=f"pip install 'ganrm-bench[{extra}]'  (or: make install EXTRAS={extra})",
        )


class MissingWeightsError(UserError):
    """Model weights that are neither on disk nor reachable (offline machine)."""

    def __init__(self, model: str, tried: str, how: str):
        super().__init__(f"weights for {model} are not available ({tried})", hint=how)


class MissingDataError(MissingWeightsError):
    """A data file a plugin's identity digests (a pair set's annotations) that is not on this
    machine: a plan stands in for it with a provisional identity, as for absent weights."""

    def __init__(self, message: str, *, hint: str | None = None):
        UserError.__init__(self, message, hint=hint)


def require(module: str, *, plugin: str, extra: str):
    """Import an optional dependency or raise MissingExtraError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised via tests with a fake module name
        raise MissingExtraError(plugin, extra, module) from exc


def did_you_mean(name: str, known: list[str], *, list_known: bool = True) -> str:
    """The tail of an unknown-name message: the closest known name, else the known ones (or
    nothing, without `list_known`: for long lists the caller shows its own way)."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    if close:
        return f"; did you mean {close[0]!r}?"
    if not list_known:
        return ""
    return f"; defined: {', '.join(known)}" if known else "; none defined"
