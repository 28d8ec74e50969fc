"""pytest hooks for the reports: name every check for people, then write junit/summary/html/history.

Registered by the root conftest.py. Active only in conformance runs (those that load a
topology) that write a JUnit file; the reports go next to it (reports/ under nox).
"""

from __future__ import annotations

import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from conformance.errors import ConfigError
from conformance.provision.versions import VERSIONS_FILE, Versions, load_versions
from conformance.pytest_plugin import TOPOLOGY, PreflightItem
from conformance.reports import junit, write
from conformance.reports.model import AREAS
from conformance.topology import Topology

STARTED = pytest.StashKey[float]()
WRITTEN = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("conformance").addoption(
        "--pins", default=str(VERSIONS_FILE), metavar="PATH",
        help="versions file the stack under test was brought up with, for the report (default stack/versions.yaml)")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[STARTED] = time.time()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Tag every check with what the reports group it by: its nodeid, area and cluster."""
    if TOPOLOGY not in session.config.stash:
        return
    topo = session.config.stash[TOPOLOGY]
    for item in session.items:
        item.user_properties[0:0] = [("nodeid", item.nodeid), ("area", area_of(item)),
                                     ("cluster", cluster_of(item, topo))]


def area_of(item: pytest.Item) -> str:
    if isinstance(item, PreflightItem):
        return "platform"
    names = {m.name for m in item.iter_markers()}
    return next((a for a in AREAS if a in names), item.nodeid.split("::")[0].rsplit("/", 1)[-1]
                .removesuffix(".py").removeprefix("test_"))


def cluster_of(item: pytest.Item, topo: Topology) -> str:
    """The parametrized cluster (or remote); checks that are not per cluster run against the primary."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    for key in ("cluster", "remote"):
        if key in params and hasattr(params[key], "name"):
            return params[key].name
    return topo.primary.name


@pytest.hookimpl(trylast=True)  # after junitxml has written the file
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    path = config.option.xmlpath if hasattr(config.option, "xmlpath") else None
    if TOPOLOGY not in config.stash or not path or hasattr(config, "workerinput"):
        return
    junit_path = Path(path)
    if not junit_path.is_file():
        return
    try:
        junit.postprocess(junit_path, run_properties(config))
        write.record(junit_path, config.stash[STARTED])
        config.stash[WRITTEN] = f"reports: {junit_path.parent / 'summary.md'}, {junit_path.parent / 'index.html'}"
    except Exception as e:  # noqa: BLE001 - a report bug must not hide the verdict
        config.stash[WRITTEN] = f"reports could not be written: {type(e).__name__}: {e}"


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if WRITTEN in config.stash:
        terminalreporter.write_line(config.stash[WRITTEN])


def run_properties(config: pytest.Config) -> dict[str, str]:
    """Topology, pinned versions and tool versions: what a reader needs to reproduce the run."""
    topo: Topology = config.stash[TOPOLOGY]
    props = {
        "topology": str(topo.path),
        "clusters": ",".join(topo.names),
        "primary": topo.primary.name,
        "profile": topo.profile,  # the stack profile: the picture names its log agent
        **{f"part.{p.name}": ",".join(f"{k}={v}" for k, v in p.options.items()) or "on" for p in topo.parts.values()},
        **{f"cluster.{c.name}": f"{c.role}, {c.provider}" for c in topo.clusters},
        "read_only": str(bool(config.getoption("read_only"))).lower(),
        "strict": str(bool(config.getoption("strict"))).lower(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(config.stash[STARTED])),
    }
    try:
        props.update(pins(load_versions(Path(config.getoption("pins")))))
    except ConfigError as e:
        props["pins"] = f"unreadable: {e}"
    props["tool.python"] = platform.python_version()
    for dist in ("pytest", "monitoring-conformance"):
        try:
            props[f"tool.{dist}"] = version(dist)
        except PackageNotFoundError:
            pass
    return props


def pins(v: Versions) -> dict[str, str]:
    """The versions file as flat report properties."""
    out = {"pins": str(v.path), "pin.istio": v.istio, "pin.kind_node_image": v.node_image,
           "pin.kubernetes": v.node_kubernetes, "pin.metallb": v.metallb.version, "pin.loki_image": v.loki_image_tag}
    out.update({f"pin.chart.{k}": c.version for k, c in v.charts.items()})
    out.update({f"tool.{t.name}": t.version for t in v.tools.values()})
    return out
