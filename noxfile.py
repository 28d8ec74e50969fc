"""Sessions: `tests` (self-tests), `conformance` (the suites), `up`/`down` (kind bring-up), `report` (history),
`upgrade` (old pins -> current pins), `bench` (time to verdict per broken hop). Extra arguments go after `--`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nox
import nox.command

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = False

ROOT = Path(__file__).parent
REPORTS = ROOT / "reports"


def install(session: nox.Session) -> None:
    """Install the project (editable) with the self-test extras."""
    session.install("-e", ".[test]")
    REPORTS.mkdir(exist_ok=True)


@nox.session
def tests(session: nox.Session) -> None:
    """Self-tests: the library against real servers (tests/real; Prometheus 3.14) and contract-faithful fakes.

    Most self-tests wait on I/O (child pytest runs, scrapes, remote write), so twice
    as many workers as cores finish sooner (2 cores: 4 workers ~2.7 min, -n auto ~3.8 min).
    The `slow` tests (the metrics checks at the stack's 30 s scrape interval, ~2 min on one
    worker) run first and overlap the rest; `-- -m "not slow"` leaves them out. A real server
    missing from the cache is built before the tests start, with progress (once per machine).
    """
    install(session)
    session.run(
        "pytest", "tests", "-n", str(max(4, 2 * (os.cpu_count() or 1))),
        f"--junitxml={REPORTS / 'self-tests.xml'}",
        *session.posargs,
    )


@nox.session
def up(session: nox.Session) -> None:
    """Create the kind clusters of the topology and install the stack (`-- --dry-run` prints the plan)."""
    install(session)
    session.run("python", "-m", "conformance.provision", "up", *session.posargs)


@nox.session
def down(session: nox.Session) -> None:
    """Delete the kind clusters this tool created (never a cluster it did not create)."""
    install(session)
    session.run("python", "-m", "conformance.provision", "down", *session.posargs)


@nox.session
def conformance(session: nox.Session) -> None:
    """The conformance suites against the clusters of the topology (default kind/topology.yaml).

    With kind clusters in the topology: `up` first, then the suites, then `down` unless
    `--keep`. However it ends, reports/ has junit.xml, summary.md, index.html and a history
    line, and the exit status is the verdict's: 0 PASS, 1 FAIL, 4 ERROR, 5 INCOMPLETE.
    """
    install(session)
    code = subprocess.run([str(Path(session.bin) / "python"), "-m", "conformance", *session.posargs], cwd=ROOT).returncode
    if code:
        sys.exit(code)  # nox would say 1 for any failure; a nightly tells the verdicts apart by the code


@nox.session
def report(session: nox.Session) -> None:
    """The last runs of reports/history.jsonl as a table (`-- --last N`); regressions in latency stand out."""
    install(session)
    session.run("python", "-m", "conformance.reports", "history", "--history", str(REPORTS / "history.jsonl"),
                *session.posargs)


@nox.session
def upgrade(session: nox.Session) -> None:
    """Bring the stack up at the pins of `--from PATH`, run the suites, upgrade to the current pins, run them again.

    Reports both runs side by side in reports/upgrade/. Extra options as for `up`
    (--topology, --cache-dir, --preload, --offline, --keep); pytest arguments after `--pytest`.
    """
    install(session)
    session.run("python", "-m", "conformance.provision.upgrade", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Time to verdict per broken hop and a healthy run's figures on the proving ground, beside the previous run's.

    Loopback only, every run bounded; prints and keeps its numbers in reports/bench.json, never fails on a time.
    `-- -k Kiali` runs some rows, `-- --timeout-scale 0.1` shortens the waits (~10 min at the real timeouts).
    `-- --parts [-k ...]` times the optional parts' failing paths instead (benchmarks/parts.py).
    """
    install(session)
    args = list(session.posargs)
    if "--parts" in args:
        args.remove("--parts")
        session.run("python", "benchmarks/parts.py", *args)
        return
    session.run("python", "benchmarks/bench.py", *args)
