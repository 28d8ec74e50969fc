"""The pytest side of the suite: arguments, topology, per-cluster parametrization, access, outcomes, the verdict.

Registered by the root conftest.py. Only a run that collects suites/ loads the
topology; the self-tests in tests/ leave it alone. What a run ends as (PASS, FAIL,
INCOMPLETE, ERROR: conformance/reports/model.py) is its exit status.
"""

from __future__ import annotations

import difflib
import gc
import re
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from conformance.core import hopboard
from conformance.probes import inventory
from conformance.core.access import Access, placed_namespaces, read_permissions, write_permissions
from conformance.core.errors import ConfigError
from conformance.core.eventually import set_timeout_scale
from conformance.core.http import ServiceError
from conformance.core.kube import AccessProof, KubeAccess
from conformance.core.names import MARKER_ALIASES, marker_expression, part_name
from conformance.core.outcomes import (CheckFailure, NotApplicable, PreconditionUnmet, Unobservable, from_service_error,
                                  outcome_kind)
from conformance.core.versions import VERSIONS_FILE, load_versions
from conformance.plugins.preflight import docker_engine_problem, kind_preflight_message
from conformance.core.redact import redact
from conformance.reports.model import EXIT_CODES, Check, Run, check_from_properties
from conformance.reports.junit import headline
from conformance.core.topology import Cluster, Topology, load_topology

SUITES_DIR = Path(__file__).resolve().parents[2] / "suites"
TOPOLOGY = pytest.StashKey[Topology]()
ACCESS_PROOFS = pytest.StashKey[dict]()  # cluster name -> kube.AccessProof, found before the first check
STOPPED = pytest.StashKey[str]()  # why the run stopped before its checks (arguments, topology, preflight): ERROR
STOPPED_AT = pytest.StashKey[str]()  # at which step: arguments, topology
CHECKS = pytest.StashKey["CheckRecorder"]()  # every check's outcome, as the checks end
VERDICT = pytest.StashKey[Run]()
ACCESS_SECONDS = pytest.StashKey[float]()
INVENTORY = pytest.StashKey[list]()  # inventory.Entry per cluster and service, taken once before the first check
FOUND = pytest.StashKey[dict]()  # (cluster, service) -> discovery.Located (or why not): Access.found of every process
INVENTORY_SECONDS = pytest.StashKey[float]()
_NOT_OBSERVED = pytest.StashKey[Unobservable]()  # known at collection: a part the topology lacks, a write under --read-only
_MISSING_PART = pytest.StashKey[str]()  # the optional part the topology does not list, for the closing block's count
REQUIREMENTS = ("must", "should")
# Markers pytest itself defines; a -m expression may name them too.
PYTEST_MARKERS = ("skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings")
EXPRESSION_WORDS = ("and", "or", "not", "True", "False", "None")
CARRIED_MARKERS = ("part", "requirement", "writes", "upgrade", "hop")  # what a check is, not an area of the stack


class NotObserved(pytest.skip.Exception):
    """How pytest sees a check that could not observe its hop: a skip that remembers whether the topology declared it."""

    # Shown as pytest shows its own skips ("Skipped: <reason>"), which its reports strip to the reason.
    __module__ = "builtins"
    __qualname__ = "Skipped"

    def __init__(self, reason: str, declared: bool) -> None:
        super().__init__(msg=reason, _use_item_location=True)
        self.declared = declared


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
        help="the stack profile (promtail, alloy, vector-opensearch) instead of the topology's profile: (as given to `up --profile`)")


def stop(config: pytest.Config, reason: str, step: str = "arguments") -> pytest.UsageError:
    """The run ends before any check, as ERROR with this one-line reason (the reports still say so)."""
    config.stash[STOPPED] = reason
    config.stash[STOPPED_AT] = step
    return pytest.UsageError(reason)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("help", False):
        return  # --help reads nothing else: it must work whatever the topology says
    try:
        set_timeout_scale(config.getoption("timeout_scale"))
    except ValueError as e:
        raise stop(config, f"--timeout-scale {config.getoption('timeout_scale')}: {e}") from None
    if not is_conformance_run(config):
        return
    if not any(arg.startswith("-r") for arg in config.invocation_params.args):
        config.option.reportchars = "fE"  # skips are grouped by reason in the closing block, not one line each
    expression = config.getoption("markexpr", "")
    problem = marker_expression_problem(expression, [*registered_markers(config), *MARKER_ALIASES])
    if problem:
        raise stop(config, problem)
    config.option.markexpr = marker_expression(expression)  # -m kubebench selects the kube_bench checks
    try:
        extra = [p for p in config.getoption("with_parts").split(",") if p]
        config.stash[TOPOLOGY] = load_topology(config.getoption("topology")).with_parts(extra).with_profile(
            config.getoption("stack_profile") or None)
    except ConfigError as e:
        raise stop(config, str(e), "topology") from None
    config.stash[ACCESS_PROOFS] = {}
    config.stash[FOUND] = {}
    if not hasattr(config, "workerinput"):
        config.stash[CHECKS] = CheckRecorder()
        config.pluginmanager.register(config.stash[CHECKS], "conformance-checks")


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """`--markers` on the suites: the suite's markers with their meaning (pytest's own are in pytest's docs)."""
    if config.getoption("markers", False) and is_conformance_run(config):
        print("\n".join(marker_lines(config.getini("markers"))))
        return 0
    return None


def marker_lines(ini_lines: list[str]) -> list[str]:
    """The suite's markers, one line each: those -m selects by (with their aliases), then the ones checks carry."""
    described = [(re.split(r"[(:]", line, maxsplit=1)[0].strip(), line) for line in ini_lines]
    aliases = {m: [a for a, to in MARKER_ALIASES.items() if to == m] for m, _ in described}
    areas = [f"  {line}" + (f" (also: {', '.join(aliases[m])})" if aliases[m] else "")
             for m, line in described if m not in CARRIED_MARKERS]
    carried = [f"  {line}" for m, line in described if m in CARRIED_MARKERS]
    return ["The suite's markers: -m EXPR runs the checks they mark (`-m \"logs or metrics\"`, `-m \"not mesh\"`);",
            "a name no check has is refused.", *areas, "What a check carries besides (-m takes writes and upgrade too):",
            *carried]


def registered_markers(config: pytest.Config) -> list[str]:
    """The marker names a -m expression may use: the suite's (pyproject.toml) and pytest's own."""
    names = [re.split(r"[(:]", line, maxsplit=1)[0].strip() for line in config.getini("markers")]
    return [n for n in dict.fromkeys([*names, *PYTEST_MARKERS]) if n]


def marker_expression_problem(expression: str, known: list[str]) -> str | None:
    """One line when a -m expression names a marker no check has (pytest would quietly select nothing)."""
    if not expression:
        return None
    without_arguments = re.sub(r"\([^)]*\)", " ", expression)  # marker(kw=value): only the name is a marker
    words = re.findall(r"[A-Za-z_][\w-]*", without_arguments)
    unknown = [w for w in dict.fromkeys(words) if w not in EXPRESSION_WORDS and w not in known]
    if not unknown:
        return None
    hints = []
    for word in unknown:
        close = difflib.get_close_matches(word, known, n=1)
        hints.append(f"{word!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    suite = [m for m in known if m not in PYTEST_MARKERS and m not in ("part", "requirement", "hop")
             and m not in MARKER_ALIASES]
    return (f"-m {expression!r}: unknown marker {', '.join(hints)}; "
            f"the suite's markers: {', '.join(suite)}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    if TOPOLOGY not in config.stash:
        return []
    topo = topology_of(config)
    clusters = ", ".join(f"{c.name} ({c.role}, {c.provider})" for c in topo.clusters)
    parts = ", ".join(str(p) for p in topo.parts.values()) or "none"
    lines = [f"topology: {topo.path}: {clusters}; optional parts: {parts}; profile: {topo.profile}"]
    proofs = config.stash.get(ACCESS_PROOFS, {})
    if proofs:
        lines.append(f"Kubernetes API, looked at once in {config.stash.get(ACCESS_SECONDS, 0.0):.1f} s:")
        lines += [f"  {'ok' if p.ok and not p.denied else 'NO'} {p.summary}" for p in proofs.values()]
    if INVENTORY in config.stash:
        lines = inventory_lines(config) + lines
    return lines


def inventory_lines(config: pytest.Config) -> list[str]:
    """The stack inventory and its drift from the pins, first thing a reader sees."""
    try:
        versions = load_versions(Path(config.getoption("pins", None) or VERSIONS_FILE))
    except (ConfigError, ValueError):
        versions = None
    topo = topology_of(config)
    head = inventory.lines(config.stash[INVENTORY], versions, topo.profile, inventory.described(Access(topo)))
    head[0] = head[0].rstrip(":") + f", looked at once in {config.stash.get(INVENTORY_SECONDS, 0.0):.1f} s:"
    return head


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


def cluster_of(item: pytest.Item, topo: Topology) -> Cluster:
    """The cluster a check is parametrized for (cluster or remote); checks that are not per cluster judge the primary."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    for key in ("cluster", "remote"):
        if isinstance(params.get(key), Cluster):
            return params[key]
    return topo.primary


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
        empty = item.get_closest_marker("skip")
        if empty is not None and str(empty.kwargs.get("reason", "")).startswith("got empty parameter set"):
            item.stash[_NOT_OBSERVED] = NotApplicable(f"the topology has no remote cluster ({topo.path})")
        for marker in item.iter_markers("part"):
            missing = topo.part_missing(marker.args[0])
            if missing:
                item.stash[_NOT_OBSERVED] = NotApplicable(missing)
                item.stash[_MISSING_PART] = part_name(marker.args[0])
        if read_only and item.get_closest_marker("writes") and _NOT_OBSERVED not in item.stash:
            item.stash[_NOT_OBSERVED] = Unobservable("--read-only: this check writes to the system under test")


def prove_access(config: pytest.Config) -> dict[str, AccessProof]:
    """Each API server of the topology looked at once, side by side, before any check (what the run needs: reads, and
    writes unless --read-only); the hop board hands the looks to xdist workers, which make none of their own."""
    topo = topology_of(config)
    board = hopboard.board_from_env()
    writes = [] if config.getoption("read_only") else write_permissions()

    def prove(cluster: Cluster) -> AccessProof:
        if board is not None and (shared := board.read_note(f"access[{cluster.name}]")):
            return AccessProof.from_json(shared)
        # The reads where the topology places services (else the bring-up's namespace, a first guess); prove_found
        # proves them again where the inventory finds the services.
        proof = KubeAccess(cluster).prove(read_permissions(placed_namespaces(cluster)) + writes)
        if board is not None:
            board.write_note(f"access[{cluster.name}]", proof.to_json())
        return proof

    clusters = [c for c in topo.clusters if c.has_kube]
    if not clusters:
        return {}
    with ThreadPoolExecutor(max_workers=len(clusters)) as pool:
        return {c.name: proof for c, proof in zip(clusters, pool.map(prove, clusters))}


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """What start-up imported and collected lives as long as the run: no garbage collection walks it again (nor
    pytest's closing collections, each of which took ~50 ms)."""
    gc.freeze()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Before any check (and before xdist starts its workers): one look at every API server."""
    config = session.config
    if TOPOLOGY not in config.stash or config.option.collectonly or hasattr(config, "workerinput"):
        return
    started = time.monotonic()
    config.stash[ACCESS_PROOFS].update(prove_access(config))
    config.stash[ACCESS_SECONDS] = time.monotonic() - started
    started = time.monotonic()
    config.stash[INVENTORY] = stack_inventory(config)
    config.stash[ACCESS_PROOFS].update(prove_found(config))
    config.stash[INVENTORY_SECONDS] = time.monotonic() - started


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """An xdist worker takes the looks the controller made (from the hop board)."""
    config = session.config
    if TOPOLOGY in config.stash and hasattr(config, "workerinput") and not config.option.collectonly:
        config.stash[ACCESS_PROOFS].update(prove_access(config))
        config.stash[INVENTORY] = stack_inventory(config)


def prove_found(config: pytest.Config) -> dict[str, AccessProof]:
    """The reads every check needs (services/proxy, pods), proven in the namespaces the inventory found each cluster's
    services in, not the bring-up's: added to each cluster's proof and handed to the xdist workers (hop board)."""
    board = hopboard.board_from_env()
    proofs = config.stash[ACCESS_PROOFS]
    access = Access(topology_of(config), proofs, dict(config.stash[FOUND]))
    out: dict[str, AccessProof] = {}
    for cluster in topology_of(config).clusters:
        proof = proofs.get(cluster.name)
        if proof is None or not proof.ok or not access.found_namespaces(cluster):
            continue
        out[cluster.name] = access.prove_where_found(cluster, proof)
        if board is not None:
            board.write_note(f"access[{cluster.name}]", out[cluster.name].to_json())
    return out


def stack_inventory(config: pytest.Config) -> list:
    """Each cluster's services found and asked their version once (conformance/probes/inventory.py); xdist workers take the
    controller's from the hop board, and every check's Access starts from those locations."""
    board = hopboard.board_from_env()
    access = Access(topology_of(config), config.stash[ACCESS_PROOFS])
    shared = board.read_note("inventory") if board is not None else None
    if shared:
        entries = inventory.from_json(shared, access)
    else:
        entries = inventory.take_inventory(access)
        if board is not None:
            board.write_note("inventory", inventory.to_json(entries, access))
    config.stash[FOUND].update(access.found)
    return entries


def not_observed(error: Unobservable) -> NotObserved:
    return NotObserved(redact(error.reason), error.declared)


@contextmanager
def as_outcomes(config: pytest.Config) -> Iterator[None]:
    """A service error outside any wait (the transport already retried it) or an unobservable hop, as a check outcome."""
    try:
        yield
    except Unobservable as e:
        if TOPOLOGY not in config.stash:
            raise
        raise not_observed(e) from None
    except ServiceError as e:
        if TOPOLOGY not in config.stash:
            raise
        outcome = from_service_error(e)
        if isinstance(outcome, Unobservable):
            raise not_observed(outcome) from None
        raise outcome from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    config = item.config
    if TOPOLOGY in config.stash and not isinstance(item, PreflightItem):
        if _NOT_OBSERVED in item.stash:
            raise not_observed(item.stash[_NOT_OBSERVED])
        if item.get_closest_marker("writes"):
            cluster = cluster_of(item, topology_of(config))
            denied = Access(topology_of(config), config.stash[ACCESS_PROOFS]).denied(cluster, write_permissions())
            if denied:
                raise NotObserved(denied, declared=False)
    with as_outcomes(config):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with as_outcomes(item.config):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item):
    """A cleanup that meets an environment problem (the API server gone mid-run) says so in a line, too."""
    with as_outcomes(item.config):
        return (yield)


def requirement_of(item: pytest.Item) -> str:
    marker = item.get_closest_marker("requirement")
    level = marker.args[0] if marker and marker.args else "must"
    if level not in REQUIREMENTS:
        raise pytest.UsageError(f"{item.nodeid}: requirement must be one of {REQUIREMENTS}, got {level!r}")
    return level


def outcome_of(report: pytest.TestReport, exc: BaseException | None) -> str:
    """The report's outcome kind: a failure's kind, or for a skip whether the topology declared it."""
    if report.skipped:
        return "not_applicable" if getattr(exc, "declared", False) else "skipped"
    if isinstance(exc, hopboard.KnownBroken):
        return "blocked"
    return outcome_kind(exc)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if TOPOLOGY not in item.config.stash:
        return report
    exc = call.excinfo.value if call.excinfo else None
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        if not isinstance(item, PreflightItem):
            item.user_properties.append(("requirement", requirement_of(item)))
        item.user_properties.append(("outcome", outcome_of(report, exc)))
        if report.skipped and _MISSING_PART in item.stash:
            item.user_properties.append(("missing_part", item.stash[_MISSING_PART]))
        if isinstance(exc, hopboard.KnownBroken):
            item.user_properties += [("hop", exc.known.hop), ("blocked_by", exc.known.check)]
        elif isinstance(exc, CheckFailure):
            item.user_properties.append(("hop", exc.hop))
        report.user_properties = list(item.user_properties)
    if report.failed and isinstance(exc, CheckFailure):
        # The diagnosis is the report: hop and verdict first, then the evidence; no source dump.
        path, line, _ = item.reportinfo()
        report.longrepr = redact(f"{exc.message}\n\n[{exc.kind}] {item.nodeid} ({path}:{(line or 0) + 1})")
    elif report.failed and report.longrepr is not None:
        report.longrepr = redact(str(report.longrepr))
    if report.failed and isinstance(item, PreflightItem):
        item.session.shouldstop = "preflight failed; nothing else can run (see the first failure)"
    return report


class CheckRecorder:
    """Keeps each check's outcome as it ends (also the ones xdist workers send), for the verdict and the closing block."""

    def __init__(self) -> None:
        self.checks: dict[str, Check] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = dict(report.user_properties)
        if "outcome" in props and (report.when == "call" or (report.when == "setup" and not report.passed)):
            message = skip_reason(report) if report.skipped else headline(str(report.longrepr or ""))
            self.checks[report.nodeid] = check_from_properties(props, message=message, seconds=report.duration)
        elif report.when == "teardown" and report.failed and report.nodeid in self.checks:
            # A check that could not clean up left something behind in the system under test.
            self.checks[report.nodeid] = self.checks[report.nodeid].with_outcome(
                "error", f"cleanup failed: {headline(str(report.longrepr))}")


def skip_reason(report: pytest.TestReport) -> str:
    """A skip's reason (pytest keeps it as the third element of longrepr), without pytest's 'Skipped: '."""
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "")
    return text.removeprefix("Skipped: ")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The verdict of the checks that ran is the run's exit status (conformance/reports/model.py EXIT_CODES)."""
    config = session.config
    if CHECKS not in config.stash:
        return
    checks = list(config.stash[CHECKS].checks.values())
    preflight = next((c for c in checks if c.area == "platform" and c.name == "preflight[kind]" and c.failing), None)
    if preflight is not None:
        config.stash[STOPPED] = f"preflight: {preflight.message}"
    elif exitstatus == pytest.ExitCode.INTERRUPTED:
        config.stash[STOPPED] = "interrupted" + (" (collection errors: see above)" if session.testsfailed and not checks else "")
    elif exitstatus == pytest.ExitCode.INTERNAL_ERROR:
        config.stash[STOPPED] = "pytest internal error (see above)"
    properties = {"strict": str(bool(config.getoption("strict"))).lower()}
    if STOPPED in config.stash:
        properties["error"] = config.stash[STOPPED]
    run = Run(checks, properties)
    config.stash[VERDICT] = run
    session.exitstatus = EXIT_CODES[run.verdict]
