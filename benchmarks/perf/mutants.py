"""Mutation testing of the decision modules (`make mutants`), with cosmic-ray.

The statistics, the gate, the monitor, the report cards, the search methods and the study's results
decide what a run *says*; a one-line bug there that no test notices is a wrong claim. For each group
below, cosmic-ray plants one small bug at a time (a comparison or arithmetic operator swapped, a
number nudged, a condition negated, a loop skipped, ...) and runs the group's own tests; a mutant
the tests do not notice "survives". The survivors are listed file:line by operator, so each can be
judged: a missing test, or an equivalent mutant (one that cannot change any result).

Isolation: the mutants are planted in a scratch copy of the working tree (git's tracked and
untracked-but-not-ignored files), imported through PYTHONPATH ahead of the editable install, so the
developer's tree is never modified, even if this is interrupted.

    python benchmarks/perf/mutants.py [--group stats ...] [--work .cache/mutants] [--list]

Needs cosmic-ray (`make mutants` installs it in .mutvenv); the tests run with this interpreter's
environment (the project venv). Not part of CI: the whole set takes hours on one core.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: group -> (modules to mutate, the group's fast tests, functions left out: presentation, not decisions).
GROUPS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "stats": (["harness/stats/gate.py", "harness/stats/paired.py"],
              ["tests/harness/stats/test_gate_decisions.py", "tests/harness/stats/test_paired_edges.py",
               "tests/harness/stats/test_paired.py"], ["line", "lines"]),
    "monitor": (["harness/diagnostics/monitor.py"],
                ["tests/harness/diagnostics/test_monitor_decisions.py", "tests/harness/diagnostics/test_monitor.py"],
                ["write_round_figure", "render_diagnostics_markdown", "run_extras_markdown", "_n", "heldout_warnings"]),
    "scorecard": (["harness/diagnostics/scorecard.py"], ["tests/harness/diagnostics/test_monitor.py"],
                  ["render_cards_markdown", "write_card_figure", "_fmt"]),
    "smc": (["methods/smc_search.py"], ["tests/methods/test_smc_scripted.py",
            "tests/methods/test_smc_search.py::test_systematic_resampling_and_potentials_by_hand"], []),
    "search": (["methods/search.py"], ["tests/methods/test_smc_scripted.py", "tests/methods/test_search.py"], []),
    "study": (["harness/app/study/results.py", "harness/app/study/stats.py"], ["tests/harness/app/study/test_results.py"],
              ["render_markdown"]),
}

#: The plugged-in bugs: a comparison's boundary or direction (> vs ≥, > vs <), == vs !=, + vs −,
#: × vs ÷, a number ±1, a condition negated or its `not` dropped, and/or swapped, True/False, a sign
#: dropped, a loop that never runs, break/continue. Every other cosmic-ray operator is left out (bit
#: and shift operators, `is`, ordering swaps of ==: a crash or the same bug twice; variable
#: insertion, decorator and exception swaps: structural).
KEEP = ("ReplaceComparisonOperator_(Gt_GtE|Gt_Lt|GtE_Gt|GtE_LtE|Lt_LtE|Lt_Gt|LtE_Lt|LtE_GtE|Eq_NotEq|NotEq_Eq)",
        "ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Div|Div_Mul)", "NumberReplacer", "AddNot", "ReplaceAndWithOr",
        "ReplaceOrWithAnd", "ReplaceTrueWithFalse", "ReplaceFalseWithTrue", "ReplaceUnaryOperator_(Delete_Not|Delete_USub|USub_UAdd)",
        "ZeroIterationForLoop", "ReplaceBreakWithContinue", "ReplaceContinueWithBreak")
EXCLUDE = [rf"^(?!core/({'|'.join(KEEP)})$)"]

PACKAGES = {"harness": "harness", "methods": "methods", "metrics": "metrics", "mini": "mini", "benchmarks": "benchmarks"}


def copy_tree(dest: Path) -> None:
    """The working tree as git sees it (tracked + untracked, not ignored), with `ganrm_bench/<pkg>`
    links so that `import ganrm_bench.harness...` resolves to the copy through PYTHONPATH."""
    if dest.exists():
        shutil.rmtree(dest)
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for name, folder in PACKAGES.items():
        (dest / "ganrm_bench" / name).symlink_to(Path("..") / folder)


def check_isolation(tree: Path, env: dict) -> None:
    probe = "import ganrm_bench.harness.stats.gate as g, ganrm_bench.methods.smc_search as s; print(g.__file__); print(s.__file__)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=tree, env=env, capture_output=True, text=True, check=True).stdout.split()
    if not all(Path(p).resolve().is_relative_to(tree.resolve()) for p in out):
        sys.exit(f"mutants: the copy at {tree} does not shadow the installed package ({out}); refusing to mutate")


PYTEST_ARGS = ["-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "--timeout=600"]


def config_text(modules: list[str], tests: list[str], timeout: float, runner: str = f"{sys.executable} -m pytest") -> str:
    command = f"{runner} {' '.join(PYTEST_ARGS)} {' '.join(tests)}"
    excluded = ", ".join(json.dumps(e) for e in EXCLUDE)
    return (f'[cosmic-ray]\nmodule-path = {json.dumps(modules)}\ntimeout = {timeout:.0f}\nexcluded-modules = []\n'
            f'test-command = {json.dumps(command)}\n\n[cosmic-ray.distributor]\nname = "local"\n\n'
            f'[cosmic-ray.filters.operators-filter]\nexclude-operators = [{excluded}]\n')


def cr(tool: str, *args: str, cwd: Path, env: dict, check: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which(tool, path=str(Path(os.environ.get("MUTVENV", REPO / ".mutvenv")).resolve() / "bin")) or shutil.which(tool)
    if exe is None:
        sys.exit(f"mutants: {tool} not found: `make mutants` installs cosmic-ray in .mutvenv (or set MUTVENV)")
    return subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, text=True, check=check)


def baseline_seconds(tests: list[str], cwd: Path, env: dict) -> float:
    t0 = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", *tests],
                         cwd=cwd, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"mutants: the unmutated tests fail, nothing to measure:\n{run.stdout[-3000:]}")
    return time.monotonic() - t0


def outcomes(session: Path) -> list[dict]:
    """One dict per mutant: module, line, operator, outcome (killed / survived / skipped / incompetent)."""
    db = sqlite3.connect(session)
    rows = db.execute("SELECT m.module_path, m.start_pos_row, m.operator_name, r.worker_outcome, r.test_outcome "
                      "FROM mutation_specs m LEFT JOIN work_results r ON m.job_id = r.job_id").fetchall()
    db.close()
    out = []
    for module, line, op, worker, test in rows:
        worker, test = str(worker or "").lower(), str(test or "").lower()  # stored as the enum's name or value
        kind = "skipped" if worker == "skipped" else (test or "pending")
        out.append({"module": module, "line": line, "operator": op, "outcome": kind})
    return out


def has_work(session: Path) -> bool:
    """A session file that cosmic-ray initialised (not missing, not an empty file)."""
    if not session.is_file():
        return False
    db = sqlite3.connect(session)
    try:
        return bool(db.execute("SELECT name FROM sqlite_master WHERE name = 'mutation_specs'").fetchall())
    finally:
        db.close()


def skip_functions(session: Path, functions: list[str]) -> None:
    """Mark the mutants inside `functions` (presentation code) as skipped, as cosmic-ray's filters do."""
    if not functions:
        return
    db = sqlite3.connect(session)
    marks = ",".join("?" * len(functions))
    db.execute(f"INSERT INTO work_results (worker_outcome, output, test_outcome, diff, job_id) "
               f"SELECT 'SKIPPED', 'not a decision function', NULL, NULL, m.job_id FROM mutation_specs m "
               f"WHERE m.definition_name IN ({marks}) AND m.job_id NOT IN (SELECT job_id FROM work_results)", functions)
    db.commit()
    db.close()


def init_session(name: str, cfg: Path, session: Path, tree: Path, env: dict) -> None:
    session.unlink(missing_ok=True)
    cr("cosmic-ray", "init", str(cfg), str(session), cwd=tree, env=env)
    cr("cr-filter-operators", str(session), str(cfg), cwd=tree, env=env)
    cr("cr-filter-pragma", str(session), cwd=tree, env=env)
    skip_functions(session, GROUPS[name][2])


def run_group(name: str, tree: Path, work: Path, env: dict) -> list[dict]:
    modules, tests, _ = GROUPS[name]
    seconds = baseline_seconds(tests, tree, env)
    cfg, session = work / f"{name}.toml", work / f"{name}.sqlite"
    limit = max(60.0, 3 * seconds)
    if not has_work(session):
        cfg.write_text(config_text(modules, tests, limit))
        init_session(name, cfg, session, tree, env)
    pending = sum(r["outcome"] == "pending" for r in outcomes(session))
    print(f"[{name}] baseline {seconds:.0f} s (a fresh process); {pending} mutants to run", flush=True)
    t0 = time.monotonic()
    with fork_server(work, tree, env, limit) as runner:
        cfg.write_text(config_text(modules, tests, limit + 30, runner))
        cr("cosmic-ray", "exec", str(cfg), str(session), cwd=tree, env=env)
    print(f"[{name}] {pending} mutants in {(time.monotonic() - t0) / 60:.1f} min", flush=True)
    return outcomes(session)


# ---------------------------------------------------------------------------------------------
# A fork server: the test command of every mutant would import torch, pandas, scipy... afresh (most
# of its time). The server imports those third-party modules once and forks a child per mutant
# that runs pytest, importing the project's (mutated) modules anew; the client is the test command.

PRELOAD = ("numpy", "pandas", "scipy.stats", "torch", "PIL.Image", "pydantic", "yaml", "pytest", "sklearn.metrics")


def serve(sock_path: str, limit: float) -> None:
    import importlib
    import signal
    import socket

    for name in PRELOAD:
        importlib.import_module(name)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    while True:
        conn, _ = srv.accept()
        with conn:
            request = json.loads(conn.makefile().readline())
            if request == "stop":
                return
            pid = os.fork()
            if pid == 0:  # the child: a fresh pytest in the request's directory, output to /dev/null
                os.setsid()
                os.chdir(request["cwd"])
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1), os.dup2(null, 2)
                import pytest

                os._exit(int(pytest.main(request["args"])))
            deadline, code = time.monotonic() + limit, None
            while code is None:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    code = os.waitstatus_to_exitcode(status)
                elif time.monotonic() > deadline:
                    os.killpg(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    code = 124
                else:
                    time.sleep(0.05)
            conn.sendall(f"{code}\n".encode())


def client(sock_path: str, args: list[str]) -> int:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(sock_path)
        conn.sendall((json.dumps({"cwd": os.getcwd(), "args": args}) + "\n").encode())
        return int(conn.makefile().readline() or 1)


@contextlib.contextmanager
def fork_server(work: Path, tree: Path, env: dict, limit: float):
    """A running server for the tests in `tree`; yields the test command prefix that reaches it."""
    sock = work / "pytest.sock"
    sock.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, __file__, "--serve", str(sock), "--limit", str(limit)], cwd=tree, env=env)
    try:
        for _ in range(600):
            if sock.exists():
                break
            if proc.poll() is not None:
                sys.exit("mutants: the fork server did not start")
            time.sleep(0.1)
        yield f"{sys.executable} {__file__} --client {sock} --"
    finally:
        try:
            client_stop(sock)
        finally:
            proc.wait(timeout=30) if proc.poll() is None else None
            sock.unlink(missing_ok=True)


def client_stop(sock: Path) -> None:
    import socket

    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(str(sock))
        conn.sendall(b'"stop"\n')


def summary(results: dict[str, list[dict]]) -> str:
    lines = ["| group | mutants run | killed | survived | score | not run yet |", "|---|---|---|---|---|---|"]
    survivors = []
    for name, rows in results.items():
        judged = [r for r in rows if r["outcome"] in ("killed", "survived")]
        alive = [r for r in judged if r["outcome"] == "survived"]
        score = f"{100 * (1 - len(alive) / len(judged)):.0f} %" if judged else "–"
        pending = sum(r["outcome"] == "pending" for r in rows)
        lines.append(f"| {name} | {len(judged)} | {len(judged) - len(alive)} | {len(alive)} | {score} | {pending} |")
        survivors += [f"- {name}: {r['module']}:{r['line']} {r['operator'].removeprefix('core/')}" for r in alive]
    return "\n".join(lines + ["", "Survivors:"] + (survivors or ["- none"])) + "\n"


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--client":  # the test command of a mutant: stdlib only, fast
        sys.exit(client(sys.argv[2], sys.argv[4:]))
    if len(sys.argv) > 2 and sys.argv[1] == "--serve":
        return serve(sys.argv[2], float(sys.argv[4]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--group", action="append", choices=sorted(GROUPS), help="groups to run (default: all)")
    ap.add_argument("--work", type=Path, default=REPO / ".cache" / "mutants", help="scratch copy, sessions and summary")
    ap.add_argument("--fresh", action="store_true", help="start new sessions (default: resume unfinished ones)")
    ap.add_argument("--list", action="store_true", help="count the mutants per group and stop")
    ap.add_argument("--report", action="store_true", help="summarise the sessions in --work as they stand (nothing run)")
    args = ap.parse_args()
    groups = args.group or list(GROUPS)
    work = args.work.resolve()
    if args.report:
        sessions = {name: work / f"{name}.sqlite" for name in groups}
        print(summary({name: outcomes(path) for name, path in sessions.items() if has_work(path)}))
        return
    if args.fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    tree = work / "tree"
    copy_tree(tree)
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    check_isolation(tree, env)
    if args.list:
        for name in groups:
            cfg, session = work / f"{name}.toml", work / f"{name}.list.sqlite"
            cfg.write_text(config_text(*GROUPS[name][:2], 60))
            init_session(name, cfg, session, tree, env)
            rows = outcomes(session)
            print(f"{name}: {sum(r['outcome'] == 'pending' for r in rows)} mutants ({len(rows)} before the filters)")
        return
    results = {name: run_group(name, tree, work, env) for name in groups}
    text = summary(results)
    (work / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
