"""Self-test fixtures: the real Prometheus pair and helpers shared across test modules."""

from __future__ import annotations

import pytest

from tests.proving_ground import PrometheusPair, start_pair
from tests.real import REGISTRY, Unavailable, cached_path, ensure, opensearch


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: runs at the stack's real intervals (minutes); deselect with -m 'not slow'")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first: xdist hands them out before the rest, so their minutes overlap the other tests."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: order kept otherwise


def pytest_sessionstart(session: pytest.Session) -> None:
    """Build the real servers missing from the cache before any xdist worker starts, with progress on the terminal."""
    if hasattr(session.config, "workerinput"):
        return
    missing = [b for b in REGISTRY.values() if not cached_path(b).is_file()]
    node_missing = not (opensearch.cached_dir() / "classpath").is_file()  # built with Maven, not Go
    if not missing and not node_missing:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    say = reporter.write_line if reporter else print
    builds = [lambda b=b: ensure(b, progress=say) for b in missing]
    for build in builds + ([lambda: opensearch.ensure(progress=say)] if node_missing else []):
        try:
            build()
        except Unavailable as e:
            say(f"real servers: {e}")  # the tests that need it skip with this line (fail under CI=true)


@pytest.fixture(scope="session")
def prometheus_pair(tmp_path_factory) -> PrometheusPair:
    """Two real Prometheus processes on loopback: primary (receiver, cluster=oke) and remote (remote_write)."""
    pair = start_pair(tmp_path_factory.mktemp("prometheus-pair"))
    yield pair
    pair.stop()
