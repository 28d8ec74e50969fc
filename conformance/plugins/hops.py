"""The pytest side of conformance.core.hopboard: `@pytest.mark.hop(...)` declarations, the shared board, fail-fast.

    @pytest.mark.hop("logs[{remote}]", needs=["loki[{primary}]"])

judges `logs[<remote>]` (a precondition, or a failure raised with final=True,
marks it broken) and needs both keys: if either is known broken, the check
stops at once, before it starts and between the attempts of its waits.
`{remote}`, `{cluster}` and `{primary}` are the names of the clusters the check
runs for; a key with `{each}` stands for one key per cluster of the topology
(`needs=["logs[{each}]"]`: a check about every cluster's logs).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from conformance.core import hopboard
from conformance.core.outcomes import CheckFailure, TimedOut
from conformance.plugins.suite import TOPOLOGY, is_conformance_run, topology_of
from conformance.reports.junit import check_name

_TOKEN = pytest.StashKey[object]()
_OWNED = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and is_conformance_run(config):
        open_board(config)  # an xdist worker finds the controller's board in its environment


def open_board(config: pytest.Config) -> None:
    """A fresh board for this run, removed when it ends."""
    folder = Path(tempfile.mkdtemp(prefix="conformance-hops-"))
    config.stash[_OWNED] = folder
    os.environ[hopboard.BOARD_ENV] = str(folder)  # a fresh board per run; xdist workers start later and inherit it


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_OWNED, None)
    if folder is not None:
        os.environ.pop(hopboard.BOARD_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


def _names(item: pytest.Item) -> dict[str, str]:
    params = getattr(getattr(item, "callspec", None), "params", {})
    names = {k: v.name for k, v in params.items() if hasattr(v, "name")}
    if TOPOLOGY in item.config.stash:
        names.setdefault("primary", topology_of(item.config).primary.name)
    return names


def _keys(item: pytest.Item, templates, names: dict[str, str]) -> list[str]:
    keys = []
    for template in templates:
        if "{each}" not in template:
            keys.append(template.format_map(names))
        elif TOPOLOGY in item.config.stash:
            keys += [template.format_map({**names, "each": n}) for n in topology_of(item.config).names]
    return keys


def declared(item: pytest.Item) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(judged, needed) hop keys of a check, with its clusters' names filled in."""
    names = _names(item)
    judged: list[str] = []
    needed: list[str] = []
    for marker in item.iter_markers("hop"):
        judged += _keys(item, marker.args, names)
        needed += _keys(item, marker.kwargs.get("needs", ()), names)
    return tuple(judged), tuple(dict.fromkeys(judged + needed))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    board = hopboard.board_from_env()
    _, needed = declared(item)
    # Set before the fixtures run: their waits stop too once a needed hop is known broken.
    item.stash[_TOKEN] = hopboard.depend_on(hopboard.Needs(board, needed) if board and needed else None)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    hopboard.raise_if_known_broken()
    return (yield)


@pytest.hookimpl(tryfirst=True)  # before the fixtures' finalizers: a cleanup runs to its end, broken hop or not
def pytest_runtest_teardown(item: pytest.Item) -> None:
    token = item.stash.get(_TOKEN, None)
    if token is not None:
        hopboard.reset(token)
        del item.stash[_TOKEN]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    exc = call.excinfo.value if call.excinfo else None
    board = hopboard.board_from_env()
    if board is not None and report.when in ("setup", "call") and (hopboard.breaks_hop(exc) or diagnosed(item, exc)):
        judged, _ = declared(item)
        assert isinstance(exc, CheckFailure)
        for key in judged:
            if isinstance(exc, hopboard.KnownBroken):  # passed on: the check that established it stays the one named
                board.record(hopboard.Broken(key, exc.known.hop, exc.known.check, exc.known.headline))
            else:
                board.record(hopboard.Broken(key=key, hop=exc.hop, check=check_name(item.nodeid), headline=exc.diagnosis))
    return report


def diagnosed(item: pytest.Item, exc: BaseException | None) -> bool:
    """A must check that waited its whole budget for its hop has diagnosed it: the checks that need it do not wait
    as long again for the same hop (one diagnosis per hop)."""
    marker = item.get_closest_marker("requirement")
    must = not marker or not marker.args or marker.args[0] == "must"
    return isinstance(exc, TimedOut) and must


@pytest.hookimpl(trylast=True)  # after -m / -k deselection and pytest's own grouping by parameter
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if any(item.get_closest_marker("hop") for item in items):
        items[:] = ordered_by_hops(items)


def ordered_by_hops(items: list[pytest.Item]) -> list[pytest.Item]:
    """Items reordered so that a check that judges a hop runs before the checks that need it; otherwise as given.

    Without xdist this is what lets a dependent stop at once: the check that can establish the break has run.
    """
    declared_hops = [declared(item) for item in items]
    judges: dict[str, set[int]] = {}
    for i, (judged, _) in enumerate(declared_hops):
        for key in judged:
            judges.setdefault(key, set()).add(i)
    after = [{j for key in needed if key not in judged for j in judges.get(key, ()) if j != i}
             for i, (judged, needed) in enumerate(declared_hops)]
    placed: list[int] = []
    left = list(range(len(items)))
    while left:
        done = set(placed)
        ready = next((i for i in left if after[i] <= done), left[0])  # left[0]: a cycle keeps the given order
        placed.append(ready)
        left.remove(ready)
    return [items[i] for i in placed]
