"""Sessions: `tests` (self-tests), `conformance` (the suites), `up`/`down` (kind bring-up), `report` (history),
`upgrade` (old pins -> current pins), `bench` (time to verdict per broken hop). Extra arguments go after `--`."""

from __future__ import annotations

import os
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


# Options of `nox -s conformance -- ...` that belong to the bring-up, not to pytest
# (the value-taking ones consume the next argument). --topology, --with and --profile go to both.
BRINGUP_FLAGS = ("--keep", "--preload")
BRINGUP_OPTIONS = ("--offline", "--cache-dir")


def split_posargs(posargs: list[str]) -> tuple[str, list[str], list[str]]:
    """(topology, bring-up args, pytest args) from the session's posargs."""
    topology, bringup, pytest_args = str(ROOT / "kind" / "topology.yaml"), [], []
    args = iter(posargs)
    for arg in args:
        name, eq, value = arg.partition("=")
        if name == "--topology":
            topology = value if eq else next(args, topology)
            pytest_args.append(f"--topology={topology}")
        elif name == "--with":
            parts = value if eq else next(args, "")
            bringup += ["--with", parts]
            pytest_args.append(f"--with={parts}")
        elif name == "--profile":  # the stack profile (promtail, alloy): the bring-up and the suites alike
            profile = value if eq else next(args, "")
            bringup += ["--profile", profile]
            pytest_args.append(f"--profile={profile}")
        elif name in BRINGUP_FLAGS:
            bringup.append(arg)
        elif name in BRINGUP_OPTIONS:
            bringup += [name, value if eq else next(args, "")]
        else:
            pytest_args.append(arg)
    return topology, bringup, pytest_args


@nox.session
def conformance(session: nox.Session) -> None:
    """The conformance suites against the clusters of the topology (default kind/topology.yaml).

    With kind clusters in the topology: `up` first, then the suites, then `down`
    unless `--keep`. Any failure leaves reports/junit.xml and a diagnostics bundle.
    """
    install(session)
    topology, bringup, pytest_args = split_posargs(list(session.posargs))
    junit = REPORTS / "junit.xml"
    # Every provision command must see the same cluster state as `up`.
    cache = bringup[bringup.index("--cache-dir"):][:2] if "--cache-dir" in bringup else []
    provision = ("python", "-m", "conformance.provision")
    where = session.run(*provision, "kubeconfig", "--topology", topology, *cache, silent=True, success_codes=[0, 2]) or ""
    kubeconfig = next((line.split("=", 1)[1] for line in where.splitlines() if line.startswith("KUBECONFIG=")), "")
    env = {"KUBECONFIG": kubeconfig} if kubeconfig else {}
    keep = "--keep" in bringup
    try:
        if kubeconfig:
            try:
                session.run(*provision, "up", "--topology", topology, "--junit", str(junit), *bringup)
            except nox.command.CommandFailed:
                session.error(f"bring-up failed (see above); {junit} names the phase")
        try:
            session.run("pytest", "suites", f"--junitxml={junit}", *pytest_args, env=env)
        except nox.command.CommandFailed:
            if kubeconfig:
                session.run(*provision, "diagnose", "--topology", topology, *cache, "--junit", str(junit),
                            success_codes=[0, 1])
                # Again, now that junit.xml names the bundle.
                session.run("python", "-m", "conformance.reports", "render", "--junit", str(junit), success_codes=[0, 1])
            session.error(f"conformance checks failed; see {REPORTS / 'index.html'} and {junit}")
    finally:
        if kubeconfig and not keep:
            session.run(*provision, "down", "--topology", topology, *cache, success_codes=[0, 1])


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
    """
    install(session)
    session.run("python", "benchmarks/bench.py", *session.posargs)
