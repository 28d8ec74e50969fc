"""The pytest side of the suite: topology loading, per-cluster parametrization, preflight, outcomes.

Registered by the root conftest.py. Only a run that collects suites/ loads the
topology; the self-tests in tests/ leave it alone.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from conformance.errors import ConfigError
from conformance.eventually import set_timeout_scale
from conformance.http import ServiceError
from conformance.outcomes import CheckFailure, PreconditionUnmet, outcome_kind
from conformance.preflight import docker_engine_problem, kind_preflight_message
from conformance.redact import redact
from conformance.topology import Topology, load_topology

SUITES_DIR = Path(__file__).resolve().parent.parent / "suites"
TOPOLOGY = pytest.StashKey[Topology]()
REQUIREMENTS = ("must", "should")


def is_conformance_run(config: pytest.Config) -> bool:
    """True when the run collects anything under suites/."""
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == SUITES_DIR or SUITES_DIR in path.parents:
            return True
    return False


def topology_of(config: pytest.Config) -> Topology:
    return config.stash[TOPOLOGY]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("conformance").addoption(
        "--with", dest="with_parts", default="", metavar="PART[,PART...]",
        help="optional parts the stack has besides the topology's parts: (as given to `up --with`)")
    parser.getgroup("conformance").addoption(
        "--profile", dest="stack_profile", default="", metavar="PROFILE",
        help="the stack profile (promtail, alloy) instead of the topology's profile: (as given to `up --profile`)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    try:
        set_timeout_scale(config.getoption("timeout_scale"))
    except ValueError as e:
        raise pytest.UsageError(f"--timeout-scale: {e}") from None
    if not is_conformance_run(config):
        return
    try:
        extra = [p for p in config.getoption("with_parts").split(",") if p]
        config.stash[TOPOLOGY] = load_topology(config.getoption("topology")).with_parts(extra).with_profile(
            config.getoption("stack_profile") or None)
    except ConfigError as e:
        raise pytest.UsageError(str(e)) from None


def pytest_report_header(config: pytest.Config) -> list[str]:
    if TOPOLOGY not in config.stash:
        return []
    topo = topology_of(config)
    clusters = ", ".join(f"{c.name} ({c.role}, {c.provider})" for c in topo.clusters)
    parts = ", ".join(str(p) for p in topo.parts.values()) or "none"
    return [f"topology: {topo.path}: {clusters}; optional parts: {parts}; profile: {topo.profile}"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `cluster` over every cluster and `remote` over every remote of the topology."""
    if TOPOLOGY not in metafunc.config.stash:
        return
    topo = topology_of(metafunc.config)
    if "cluster" in metafunc.fixturenames:
        metafunc.parametrize("cluster", topo.clusters, ids=topo.names, scope="session")
    if "remote" in metafunc.fixturenames:
        metafunc.parametrize("remote", topo.remotes, ids=[c.name for c in topo.remotes], scope="session")


class PreflightFailed(PreconditionUnmet):
    """The host cannot run what the topology asks for."""

    def __init__(self, message: str) -> None:
        super().__init__("conformance host → kind clusters", message)

    def __str__(self) -> str:
        return self.diagnosis


class PreflightItem(pytest.Item):
    """A first test case that checks the host can reach the topology's kind clusters."""

    def __init__(self, *, topology: Topology, **kw) -> None:
        super().__init__(**kw)
        self.topology = topology
        self.user_properties.append(("requirement", "must"))

    def runtest(self) -> None:
        kind = [c.name for c in self.topology.clusters if c.provider == "kind"]
        problem = docker_engine_problem()
        if problem:
            raise PreflightFailed(kind_preflight_message(str(self.topology.path), kind, problem))

    def repr_failure(self, excinfo, style=None) -> str:
        if excinfo.errisinstance(PreflightFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.topology.path, None, "platform::preflight[kind]"


def deselect_upgrade_checks(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The upgrade checks run only in the upgrade session (it passes --upgrade-phase); elsewhere they are deselected."""
    if config.getoption("upgrade_phase", None) is not None:
        return
    upgrade = [item for item in items if item.get_closest_marker("upgrade")]
    if upgrade:
        config.hook.pytest_deselected(items=upgrade)
        items[:] = [item for item in items if not item.get_closest_marker("upgrade")]


@pytest.hookimpl(trylast=True)  # after -m / -k deselection: the preflight always runs
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if TOPOLOGY not in config.stash:
        return
    deselect_upgrade_checks(config, items)
    if not items:
        return
    topo = topology_of(config)
    if any(c.provider == "kind" for c in topo.clusters):
        items.insert(0, PreflightItem.from_parent(
            session, name="preflight[kind]", nodeid="platform::preflight[kind]", topology=topo))
    read_only = config.getoption("read_only")
    for item in items:
        for marker in item.iter_markers("part"):
            missing = topo.part_missing(marker.args[0])
            if missing:
                item.add_marker(pytest.mark.skip(reason=missing))
        if read_only and item.get_closest_marker("writes"):
            item.add_marker(pytest.mark.skip(reason="--read-only: this check writes to the system under test"))


@contextmanager
def service_errors_as_preconditions(config: pytest.Config) -> Iterator[None]:
    """A service error outside any wait (the HTTP layer already retried it) is a check outcome: precondition."""
    try:
        yield
    except ServiceError as e:
        if TOPOLOGY not in config.stash:
            raise
        raise PreconditionUnmet(f"conformance → {e.service}", e.headline, e.detail) from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    with service_errors_as_preconditions(item.config):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with service_errors_as_preconditions(item.config):
        return (yield)


def requirement_of(item: pytest.Item) -> str:
    marker = item.get_closest_marker("requirement")
    level = marker.args[0] if marker and marker.args else "must"
    if level not in REQUIREMENTS:
        raise pytest.UsageError(f"{item.nodeid}: requirement must be one of {REQUIREMENTS}, got {level!r}")
    return level


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if TOPOLOGY not in item.config.stash:
        return report
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        exc = call.excinfo.value if call.excinfo else None
        kind = "skipped" if report.skipped else outcome_kind(exc)
        if not isinstance(item, PreflightItem):
            item.user_properties.append(("requirement", requirement_of(item)))
        item.user_properties.append(("outcome", kind))
        report.user_properties = list(item.user_properties)
    exc = call.excinfo.value if call.excinfo else None
    if report.failed and isinstance(exc, CheckFailure):
        # The diagnosis is the report: hop and verdict first, then the evidence; no source dump.
        path, line, _ = item.reportinfo()
        report.longrepr = redact(f"{exc.message}\n\n[{exc.kind}] {item.nodeid} ({path}:{(line or 0) + 1})")
    elif report.failed and report.longrepr is not None:
        report.longrepr = redact(str(report.longrepr))
    if report.failed and isinstance(item, PreflightItem):
        item.session.shouldstop = "preflight failed; nothing else can run (see the first failure)"
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A failing `should` check is reported but fails the run only under --strict."""
    config = session.config
    if TOPOLOGY not in config.stash or config.getoption("strict") or exitstatus != pytest.ExitCode.TESTS_FAILED:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    failed = reporter.stats.get("failed", []) if reporter else []
    if failed and all(dict(r.user_properties).get("requirement") == "should" for r in failed):
        session.exitstatus = pytest.ExitCode.OK
