"""Command-line options and plugin registration; the fixtures themselves live in fixtures/."""

from __future__ import annotations

from pathlib import Path

DEFAULT_TOPOLOGY = Path(__file__).parent / "kind" / "topology.yaml"

pytest_plugins = [
    "conformance.plugins.suite",
    "conformance.plugins.hops",
    "conformance.plugins.progress",
    "conformance.plugins.reports",
    "fixtures.clusters",
    "fixtures.clients",
    "fixtures.canary",
    "fixtures.upgrade",
]


def pytest_addoption(parser):
    group = parser.getgroup("conformance")
    group.addoption("--topology", default=str(DEFAULT_TOPOLOGY), metavar="PATH",
                    help="topology file naming the clusters and how to reach them (default: kind/topology.yaml)")
    group.addoption("--timeout-scale", type=float, default=1.0, metavar="FACTOR",
                    help="multiply every wait's timeout by FACTOR (for slow CI)")
    group.addoption("--read-only", action="store_true",
                    help="write nothing to the system under test; checks that need writes are skipped")
    # --strict is pytest's own flag (strict markers and config); the suite also
    # reads it: a failing `should` check then fails the run too.
