"""Run the `ganrm-bench` entry point in-process (fast) and capture exit code, stdout and stderr."""

from __future__ import annotations

import contextlib
import io
import sys


def _exit_code(args, streams=contextlib.nullcontext()) -> int:
    """main() with argv = args, inside `streams`; its exit code as a process would give it."""
    from ganrm_bench.harness.app.cli.main import main

    argv = sys.argv
    sys.argv = ["ganrm-bench", *map(str, args)]
    try:
        with streams:
            main()
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv


def ganrm(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = _exit_code(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ganrm_uncaptured(*args) -> tuple[int, str, str]:
    """`ganrm` for fixtures wider than one test (no capsys there): the streams go to strings meanwhile."""
    out, err = io.StringIO(), io.StringIO()
    streams = contextlib.ExitStack()
    streams.enter_context(contextlib.redirect_stdout(out))
    streams.enter_context(contextlib.redirect_stderr(err))
    code = _exit_code(args, streams)
    return code, out.getvalue(), err.getvalue()


def run_in_process(spec, out, *, cache=None, seeds=None, sets=()):
    """What `ganrm-bench run SPEC --out OUT [--cache CACHE] [--seed S ...] [--set PATH=VALUE ...]` computes and
    writes, through the service the command calls (harness.app.services.run), in this process: for runs
    that are a test's input rather than what it asserts about the command. No failed cell."""
    from ganrm_bench.harness.app.services.run import run

    done = run(spec, out=out, cache=cache, seeds=seeds, overrides=list(sets))
    assert not done.outcome.failures, done.outcome.failures
    return done
