"""Progress while a check waits: every PROGRESS_EVERY seconds a line with the check, its hop and the last state seen.

A check's waits report through conformance.core.eventually.reporting_progress. In a plain run the line goes to the
terminal at once; an xdist worker cannot write to it, so it appends the line to a file on the hop board, which the
controller follows and writes through pytest's terminal reporter.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from pathlib import Path

import pytest

from conformance.core import hopboard
from conformance.core.eventually import reporting_progress
from conformance.plugins.suite import TOPOLOGY
from conformance.core.redact import redact
from conformance.reports.junit import check_name
from conformance.reports.text import clip

PROGRESS_FILE = "progress.log"
FOLLOW_EVERY = 0.5  # seconds between the controller's looks at the workers' progress lines
_FOLLOWER = pytest.StashKey["Follower"]()


def progress_line(check: str, hop: str, what: str, elapsed: float, state: str) -> str:
    """'… 20 s log canary reaches the primary loki[workstation] (remote workstation Promtail → oke Loki): no canary line
    yet; last seen: …'."""
    return clip(redact(f"… {elapsed:.0f} s {check} ({hop}): {what} yet; last seen: {state}"), 240)


def board_file() -> Path | None:
    board = hopboard.board_from_env()
    return board.folder / PROGRESS_FILE if board is not None else None


def reporter_for(item: pytest.Item):
    """The progress callback of one check: to the terminal here, or to the controller from an xdist worker."""
    config, check = item.config, check_name(item.nodeid)
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    path = board_file() if hasattr(config, "workerinput") else None

    def report(hop: str, what: str, elapsed: float, state: str) -> None:
        line = progress_line(check, hop, what, elapsed, state)
        if path is not None:
            with open(path, "a") as f:  # one short write in append mode: lines of several workers do not mix
                f.write(line.replace("\n", " ") + "\n")
        elif terminal is not None:
            with capture.global_and_fixture_disabled() if capture else nullcontext():  # past the check's capture
                terminal.write_line(line)
    return report


def _reporting(item: pytest.Item):
    """The check's waits report their progress; nothing outside a conformance run (no topology loaded)."""
    return reporting_progress(reporter_for(item)) if TOPOLOGY in item.config.stash else nullcontext()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    """A fixture's wait (a check's setup) reports its progress like the check's own."""
    with _reporting(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A check's waits report their progress while it runs."""
    with _reporting(item):
        return (yield)


class Follower:
    """The controller's reader of the workers' progress lines, in a thread of its own."""

    def __init__(self, path: Path, terminal) -> None:
        self.path, self.terminal = path, terminal
        self.offset = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="conformance-progress", daemon=True)

    def _run(self) -> None:
        while not self.done.wait(FOLLOW_EVERY):
            self.flush()

    def flush(self) -> None:
        try:
            with open(self.path) as f:
                f.seek(self.offset)
                text = f.read()
        except FileNotFoundError:
            return
        complete = text[: text.rfind("\n") + 1]
        self.offset += len(complete.encode())
        for line in complete.splitlines():
            self.terminal.write_line(line)

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=2)
        self.flush()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under xdist, the controller follows the workers' progress lines."""
    config = session.config
    uses_xdist = getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput")
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    path = board_file()
    if TOPOLOGY in config.stash and uses_xdist and terminal is not None and path is not None:
        config.stash[_FOLLOWER] = Follower(path, terminal)
        config.stash[_FOLLOWER].thread.start()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    follower = session.config.stash.get(_FOLLOWER, None)
    if follower is not None:
        follower.stop()
