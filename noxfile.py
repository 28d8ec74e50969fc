"""Sessions: `tests` (self-tests) and `conformance` (the suites). Extra pytest arguments go after `--`."""

from __future__ import annotations

from pathlib import Path

import nox

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
    """Self-tests: the library against real Prometheus and contract-faithful fakes."""
    install(session)
    session.run(
        "pytest", "tests", "-n", "auto",
        f"--junitxml={REPORTS / 'self-tests.xml'}",
        *session.posargs,
    )


@nox.session
def conformance(session: nox.Session) -> None:
    """The conformance suites against the clusters of the topology (default kind/topology.yaml)."""
    install(session)
    session.run(
        "pytest", "suites",
        f"--junitxml={REPORTS / 'junit.xml'}",
        *session.posargs,
    )
