"""What the checks of one run know about their hops.

A check declares the hops it judges and the hops it needs (`@pytest.mark.hop`).
When a check establishes that a hop it judges cannot work, every check that
needs that hop stops at once, as `precondition`, naming the check that found
it, instead of waiting out its own timeout. The board is a folder of small
files, so pytest-xdist workers share it.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from conformance.outcomes import CheckFailure, PreconditionUnmet

BOARD_ENV = "CONFORMANCE_HOP_BOARD"


@dataclass(frozen=True)
class Broken:
    """A hop a check found unable to work."""

    key: str  # "logs[workstation]": the name checks declare
    hop: str  # the hop as the failure named it ("workstation Promtail → oke Loki")
    check: str  # the report name of the check that established it
    headline: str  # that check's diagnosis, one line


class Board:
    """The run's shared record of broken hops; the first check to break a hop is the one named."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        return self.folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", key) + ".json")

    def record(self, broken: Broken) -> None:
        try:
            with open(self._path(broken.key), "x") as f:  # first writer wins, across processes
                json.dump(asdict(broken), f)
        except FileExistsError:
            pass

    def broken(self, keys: tuple[str, ...]) -> Broken | None:
        for key in keys:
            try:
                return Broken(**json.loads(self._path(key).read_text()))
            except (FileNotFoundError, json.JSONDecodeError):  # not broken, or being written
                continue
        return None


def breaks_hop(exc: BaseException | None) -> bool:
    """True when a check's failure means its hop cannot work: a precondition, or a failure raised as final."""
    return isinstance(exc, CheckFailure) and (exc.kind == "precondition" or exc.final)


@dataclass(frozen=True)
class Needs:
    """The hops the running check depends on, and where to look them up."""

    board: Board
    keys: tuple[str, ...]


_current: contextvars.ContextVar[Needs | None] = contextvars.ContextVar("conformance_hop_needs", default=None)


def depend_on(needs: Needs | None) -> contextvars.Token:
    """Make `needs` the running check's dependencies (the pytest plugin calls this around each check)."""
    return _current.set(needs)


def reset(token: contextvars.Token) -> None:
    _current.reset(token)


class KnownBroken(PreconditionUnmet):
    """A check stopped because a hop it needs is known broken; `known` says which check established it."""

    def __init__(self, known: Broken) -> None:
        super().__init__(known.hop, f"cannot work, as {known.check} established: {known.headline}")
        self.known = known


def raise_if_known_broken() -> None:
    """Stop the running check at once when another check has established that a hop it needs cannot work."""
    needs = _current.get()
    if needs is None or not needs.keys:
        return
    known = needs.board.broken(needs.keys)
    if known is not None:
        raise KnownBroken(known)


def board_from_env() -> Board | None:
    folder = os.environ.get(BOARD_ENV)
    return Board(Path(folder)) if folder else None
