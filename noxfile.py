"""Sessions: `conformance` (the suites), `tests` (self-tests), `up`/`down` (kind bring-up), `report` (history),
`upgrade` (old pins -> current pins), `bench` (time to verdict per broken hop). Extra arguments go after `--`.
A bare `./nox` lists them. Every session but `report` shares one environment, .nox/env, installed again only
when pyproject.toml changed; `report` needs only the standard library."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import nox

# No default: a bare `./nox` lists the sessions instead of starting a long one.
nox.options.sessions = []
nox.options.error_on_missing_interpreters = False

ROOT = Path(__file__).parent
REPORTS = ROOT / "reports"
# One environment for every session that needs the project's dependencies (they all need the same ones).
# nox gives each session its own virtualenv (337 MB, the project reinstalled on every run, ~6 s); this
# one is created once and reinstalled only when the hash of pyproject.toml, kept in STAMP, changes.
ENV = ROOT / ".nox" / "env"
BIN = ENV / "bin"
STAMP = ENV / "installed-pyproject.sha256"
# The self-tests start ~350 child interpreters (the suites as a user runs them). Where the environment says
# PYTHONDONTWRITEBYTECODE (many CI images do), each one compiled the project's modules and re-ran pytest's assertion
# rewriting again: ~0.4 s of CPU a child, a tenth of the run's CPU on a 2-core machine. Every session keeps its
# bytecode here instead, outside the source tree, written at first import; so pip compiles nothing at install
# (Python would not read it from there).
BYTECODE = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(ROOT / ".nox" / "pycache")}


def wanted_stamp() -> str:
    """What the installed environment must have been installed from: the hash of pyproject.toml."""
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def install(session: nox.Session) -> None:
    """Create .nox/env if missing; install the project (editable, with the self-test extras) if pyproject.toml changed."""
    REPORTS.mkdir(exist_ok=True)
    if not (BIN / "python").exists():
        session.run(sys.executable, "-m", "venv", str(ENV), external=True)
        STAMP.unlink(missing_ok=True)
    wanted = wanted_stamp()
    if STAMP.is_file() and STAMP.read_text().strip() == wanted:
        return
    session.run(str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                "-e", ".[test]", external=True)
    STAMP.write_text(wanted + "\n")  # only after a complete install: a failed one is retried next run


def run(session: nox.Session, program: str, *args: str, env: dict[str, str] | None = None) -> None:
    """Run a program of .nox/env as nox runs one of a session's virtualenv (its bin first on PATH), with env added."""
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "VIRTUAL_ENV": str(ENV), **BYTECODE, **(env or {})}
    session.run(str(BIN / program), *args, env=env, external=True)


SHARED = {"venv_backend": "none"}  # nox makes no virtualenv; install() keeps .nox/env


@nox.session(**SHARED)
def tests(session: nox.Session) -> None:
    """Self-tests: the library against real servers (tests/real; Prometheus 3.14) and contract-faithful fakes.

    Most self-tests wait on I/O (child pytest runs, scrapes, remote write), so four workers
    a core finish sooner (2 cores, 1629 self-tests: 6 workers 14.5 min, 8 workers 13.0 min,
    10 workers 13.9 min with the machine's CPU 94 % busy, then the limit).
    The `slow` tests (the metrics checks at the stack's 30 s scrape interval, ~2 min on one
    worker) run first and overlap the rest; `-- -m "not slow"` leaves them out. A real server
    missing from the cache is built before the tests start, with progress (once per machine).
    """
    install(session)
    chosen = any(a.startswith(("-n", "--numprocesses", "--dist")) or a == "no:xdist" for a in session.posargs)
    # loadgroup: tests sharing one expensive server (xdist_group, e.g. the real OpenSearch node) stay on one worker
    side_by_side = [] if chosen else ["-n", str(max(4, 4 * (os.cpu_count() or 1))), "--dist", "loadgroup"]
    run(session, "pytest", "tests", *side_by_side, f"--junitxml={REPORTS / 'self-tests.xml'}", *session.posargs)


@nox.session(**SHARED)
def up(session: nox.Session) -> None:
    """Create the kind clusters of the topology and install the stack (`-- --dry-run` prints the plan)."""
    install(session)
    run(session, "python", "-m", "conformance.provision", "up", *session.posargs)


@nox.session(**SHARED)
def down(session: nox.Session) -> None:
    """Delete the kind clusters this tool created (never a cluster it did not create)."""
    install(session)
    run(session, "python", "-m", "conformance.provision", "down", *session.posargs)


@nox.session(**SHARED)
def conformance(session: nox.Session) -> None:
    """The conformance suites against the clusters of the topology (default kind/topology.yaml).

    With kind clusters in the topology: `up` first, then the suites, then `down` unless
    `--keep`. However it ends, reports/ has junit.xml, summary.md, index.html and a history
    line, and the exit status is the verdict's: 0 PASS, 1 FAIL, 4 ERROR, 5 INCOMPLETE.
    """
    install(session)
    code = subprocess.run([str(BIN / "python"), "-m", "conformance", *session.posargs], cwd=ROOT,
                          env={**os.environ, **BYTECODE}).returncode
    if code:
        sys.exit(code)  # nox would say 1 for any failure; a nightly tells the verdicts apart by the code


@nox.session(venv_backend="none")
def report(session: nox.Session) -> None:
    """The last runs of reports/history.jsonl as a table (`-- --last N`); regressions in latency stand out.

    Standard library only: runs with nox's own Python, no environment to build (tests/test_noxfile.py).
    """
    session.run(sys.executable, "-m", "conformance.reports", "history", "--history", str(REPORTS / "history.jsonl"),
                *session.posargs, external=True)


@nox.session(**SHARED)
def upgrade(session: nox.Session) -> None:
    """Bring the stack up at the pins of `--from PATH`, run the suites, upgrade to the current pins, run them again.

    Reports both runs side by side in reports/upgrade/. Extra options as for `up`
    (--topology, --cache-dir, --preload, --offline, --keep); pytest arguments after `--pytest`.
    """
    install(session)
    run(session, "python", "-m", "conformance.upgrade", *session.posargs)


@nox.session(**SHARED)
def bench(session: nox.Session) -> None:
    """Time to verdict per broken hop and a healthy run's figures on the proving ground, beside the previous run's.

    Loopback only, every run bounded; prints and keeps its numbers in reports/bench.json, never fails on a time.
    `-- -k Kiali` runs some rows, `-- --timeout-scale 0.1` shortens the waits (~10 min at the real timeouts).
    Instead: `-- --parts [-k ...]` the optional parts' failing paths (benchmarks/parts.py), `-- --remotes 1,4,8` a
    healthy run as remotes are added (benchmarks/remotes.py), `-- --newcomer` a bare Prometheus pair (benchmarks/newcomer.py).
    """
    install(session)
    args = list(session.posargs)
    for switch, script in (("--parts", "parts"), ("--newcomer", "newcomer")):
        if switch in args:
            args.remove(switch)
            run(session, "python", f"benchmarks/{script}.py", *args)
            return
    if any(a == "--remotes" or a.startswith("--remotes=") for a in args):
        run(session, "python", "benchmarks/remotes.py", *args)
        return
    run(session, "python", "benchmarks/bench.py", *args)
