"""The pytest side of conformance.hopboard: `@pytest.mark.hop(...)` declarations, the shared board, fail-fast.

    @pytest.mark.hop("logs[{remote}]", needs=["loki[{primary}]"])

judges `logs[<remote>]` (a precondition, or a failure raised with final=True,
marks it broken) and needs both keys: if either is known broken, the check
stops at once, before it starts and between the attempts of its waits.
`{remote}`, `{cluster}` and `{primary}` are the names of the clusters the check
runs for.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from conformance import hopboard
from conformance.outcomes import CheckFailure
from conformance.pytest_plugin import TOPOLOGY, is_conformance_run, topology_of
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


def declared(item: pytest.Item) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(judged, needed) hop keys of a check, with its clusters' names filled in."""
    names = _names(item)
    judged: list[str] = []
    needed: list[str] = []
    for marker in item.iter_markers("hop"):
        judged += [k.format_map(names) for k in marker.args]
        needed += [k.format_map(names) for k in marker.kwargs.get("needs", ())]
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


@pytest.hookimpl(trylast=True)
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
    if board is not None and report.when in ("setup", "call") and hopboard.breaks_hop(exc):
        judged, _ = declared(item)
        assert isinstance(exc, CheckFailure)
        for key in judged:
            board.record(hopboard.Broken(key=key, hop=exc.hop, check=check_name(item.nodeid), headline=exc.diagnosis))
    return report
