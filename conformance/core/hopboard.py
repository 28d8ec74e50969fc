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

from conformance.core.outcomes import CheckFailure, PreconditionUnmet

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

    def write_note(self, key: str, text: str) -> None:
        """Something the run's processes share besides broken hops (what the API servers answered); first writer wins."""
        try:
            with open(self._path(key), "x") as f:
                f.write(text)
        except FileExistsError:
            pass

    def read_note(self, key: str) -> str | None:
        try:
            return self._path(key).read_text() or None
        except FileNotFoundError:
            return None

    def notes(self, prefix: str) -> list[str]:
        """Every note whose key starts with prefix."""
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", prefix)
        return [p.read_text() for p in sorted(self.folder.glob(f"{stem}*.json"))]

    def broken(self, keys: tuple[str, ...]) -> Broken | None:
        for key in keys:
            try:
                return Broken(**json.loads(self._path(key).read_text()))
            except (FileNotFoundError, json.JSONDecodeError):  # not broken, or being written
                continue
        return None


def breaks_hop(exc: BaseException | None) -> bool:
    """True when a check's failure means its hop cannot work: a precondition, a failure raised as final, or a hop it
    needs found broken (passed on under the check that found it)."""
    return isinstance(exc, CheckFailure) and (exc.kind in ("precondition", "blocked") or exc.final)


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

    kind = "blocked"

    def __init__(self, known: Broken) -> None:
        super().__init__(f"not run: needs {known.hop}", f"{known.headline} (found by {known.check})")
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
