"""pytest hooks for the reports: name every check for people, write junit/summary/html/history, print the closing block.

Registered by the root conftest.py. Active only in conformance runs (those that collect
suites/) that write a JUnit file; the reports go next to it (reports/ under nox). A run
that stops before its checks (a bad argument or topology) still writes them, verdict ERROR.
"""

from __future__ import annotations

import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from conformance.core import hopboard
from conformance.probes import inventory
from conformance.core.access import Access
from conformance.core.errors import ConfigError
from conformance.core.kube import AccessProof
from conformance.core.versions import VERSIONS_FILE, Versions, load_versions
from conformance.plugins.suite import (ACCESS_PROOFS, INVENTORY, STOPPED, STOPPED_AT, TOPOLOGY, VERDICT, PreflightItem,
                                       cluster_of, is_conformance_run)
from conformance.reports import junit, write
from conformance.reports.model import AREAS
from conformance.reports.text import closing_block
from conformance.core.topology import Topology

STARTED = pytest.StashKey[float]()
WRITTEN = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("conformance").addoption(
        "--pins", default=str(VERSIONS_FILE), metavar="PATH",
        help="versions file the stack under test was brought up with, for the report (default stack/versions.yaml)")


def junit_path(config: pytest.Config) -> Path | None:
    path = getattr(config.option, "xmlpath", None)
    return Path(path) if path and not hasattr(config, "workerinput") else None


def pytest_configure(config: pytest.Config) -> None:
    config.stash[STARTED] = time.time()
    folder = junit_path(config)
    if folder is not None and TOPOLOGY in config.stash:
        for stale in ("summary.md", "index.html"):  # an earlier run's must never be read as this one's
            (folder.parent / stale).unlink(missing_ok=True)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Tag every check with what the reports group it by: its nodeid, area and cluster."""
    if TOPOLOGY not in session.config.stash:
        return
    topo = session.config.stash[TOPOLOGY]
    for seq, item in enumerate(session.items):  # seq: the order people read, whichever worker ran it when
        item.user_properties[0:0] = [("nodeid", item.nodeid), ("area", area_of(item)),
                                     ("cluster", cluster_of(item, topo).name), ("seq", str(seq))]


def area_of(item: pytest.Item) -> str:
    if isinstance(item, PreflightItem):
        return "platform"
    names = {m.name for m in item.iter_markers()}
    return next((a for a in AREAS if a in names), item.nodeid.split("::")[0].rsplit("/", 1)[-1]
                .removesuffix(".py").removeprefix("test_"))


@pytest.hookimpl(trylast=True)  # after junitxml has written the file
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    path = junit_path(config)
    if TOPOLOGY not in config.stash or path is None or not path.is_file():
        return
    try:
        junit.postprocess(path, run_properties(config))
        write.record(path, config.stash[STARTED])
        config.stash[WRITTEN] = f"reports: {path.parent / 'summary.md'}, {path.parent / 'index.html'}"
    except Exception as e:  # noqa: BLE001 - a report bug must not hide the verdict
        config.stash[WRITTEN] = f"reports could not be written: {type(e).__name__}: {e}"


def pytest_unconfigure(config: pytest.Config) -> None:
    """A run stopped before its checks (pytest_configure refused an argument or the topology): reports say ERROR."""
    path = junit_path(config)
    if path is None or STOPPED not in config.stash or WRITTEN in config.stash or not is_conformance_run(config):
        return
    try:
        write.record_stopped(path, config.stash.get(STOPPED_AT, "arguments"), config.stash[STOPPED],
                             stopped_properties(config), config.stash.get(STARTED, time.time()))
    except Exception:  # noqa: BLE001 - the one-line error is already printed; a report bug must not add a traceback
        pass


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    run = config.stash.get(VERDICT, None)
    if run is not None:
        terminalreporter.section("conformance verdict", sep="=", bold=True)
        for line in closing_block(run):
            terminalreporter.write_line(line)
    if WRITTEN in config.stash:
        terminalreporter.write_line(config.stash[WRITTEN])


def stopped_properties(config: pytest.Config) -> dict[str, str]:
    """What is known of a run that stopped at its arguments: the topology file and the selection, as given."""
    return {"topology": str(config.getoption("topology", "")), **selection(config),
            "strict": str(bool(config.getoption("strict", False))).lower()}


def selection(config: pytest.Config) -> dict[str, str]:
    """-m and -k as given: the history says what a run chose."""
    chosen = {"selection.markers": config.getoption("markexpr", "") or "",
              "selection.keywords": config.getoption("keyword", "") or ""}
    return {k: v for k, v in chosen.items() if v}


def access_properties(config: pytest.Config) -> dict[str, str]:
    """What each API server answered before the first check (this process's look, or an xdist worker's)."""
    proofs: dict[str, AccessProof] = dict(config.stash.get(ACCESS_PROOFS, {}))
    board = hopboard.board_from_env()
    if board is not None:
        for text in board.notes("access["):
            proof = AccessProof.from_json(text)
            proofs.setdefault(proof.cluster, proof)
    return {f"access.{name}": proof.summary for name, proof in sorted(proofs.items())}


def inventory_properties(config: pytest.Config) -> dict[str, str]:
    """The stack inventory: inventory.<cluster>.<service> = where [how] version; drift.<cluster>.<service> per pin missed."""
    entries = config.stash.get(INVENTORY, [])
    props = {f"inventory.{e.cluster}.{e.service}": e.line().split(None, 2)[2] for e in entries}
    try:
        versions = load_versions(Path(config.getoption("pins")))
    except ConfigError:
        return props
    topo: Topology = config.stash[TOPOLOGY]
    for e in entries:
        pin = inventory.pinned(e.service, versions, topo.profile)
        if pin is not None and e.where and not inventory.same_version(e.version, pin):
            pin_said = inventory.pin_words(e.service, versions, topo.profile)
            props[f"drift.{e.cluster}.{e.service}"] = f"pinned {pin_said}, running {e.version or 'unknown'}"
    return props


def run_properties(config: pytest.Config) -> dict[str, str]:
    """Topology, selection, access, pinned versions and tool versions: what a reader needs to reproduce the run."""
    topo: Topology = config.stash[TOPOLOGY]
    props = {
        "topology": str(topo.path),
        "clusters": ",".join(topo.names),
        "primary": topo.primary.name,
        "profile": topo.profile,  # the stack profile: the picture names its log agent
        **{f"part.{p.name}": ",".join(f"{k}={v}" for k, v in p.options.items()) or "on" for p in topo.parts.values()},
        **{f"cluster.{name}": how for name, how in inventory.described(Access(topo)).items()},
        **{f"absent.{c.name}": ",".join(sorted(c.absent)) for c in topo.clusters if c.absent},
        **selection(config),
        **access_properties(config),
        **inventory_properties(config),
        "read_only": str(bool(config.getoption("read_only"))).lower(),
        "strict": str(bool(config.getoption("strict"))).lower(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(config.stash[STARTED])),
    }
    if STOPPED in config.stash:
        props["error"] = config.stash[STOPPED]
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
