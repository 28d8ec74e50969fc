"""Self-test fixtures: the real Prometheus pair and helpers shared across test modules."""

from __future__ import annotations

import pytest

from tests.proving_ground import INSTALL_HINT, PrometheusPair, prometheus_binary, start_pair


@pytest.fixture(scope="session")
def prometheus_pair(tmp_path_factory) -> PrometheusPair:
    """Two real Prometheus processes on loopback: primary (receiver, cluster=oke) and remote (remote_write)."""
    if prometheus_binary() is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    pair = start_pair(tmp_path_factory.mktemp("prometheus-pair"))
    yield pair
    pair.stop()
