"""The three ways a check can fail, which a report tells apart.

Each carries the broken hop (e.g. "remote Promtail → primary Loki") as the
first line of its message, then the evidence. They subclass AssertionError so
pytest counts them as failures, not errors.
"""

from __future__ import annotations


class CheckFailure(AssertionError):
    """A check did not hold; `kind` says how."""

    kind = "failed"

    def __init__(self, hop: str, diagnosis: str, evidence: str = "", *, final: bool = False) -> None:
        self.hop = hop
        self.diagnosis = diagnosis
        self.evidence = evidence
        self.final = final  # the hop cannot work whatever happens next (a precondition always is)
        super().__init__(self.message)

    @property
    def headline(self) -> str:
        """One line: the hop, then what is wrong with it."""
        return f"{self.hop}: {self.diagnosis}" if self.hop else self.diagnosis

    @property
    def message(self) -> str:
        return f"{self.headline}\n{self.evidence}" if self.evidence else self.headline


class Failed(CheckFailure):
    """The system answered, and the answer is wrong."""

    kind = "failed"


class TimedOut(CheckFailure):
    """The system never converged to the expected state within the timeout."""

    kind = "timed_out"


class PreconditionUnmet(CheckFailure):
    """Something the check depends on is missing or disabled; waiting cannot fix it."""

    kind = "precondition"


def outcome_kind(exc: BaseException | None) -> str:
    """The report's outcome kind for an exception raised by a check."""
    if exc is None:
        return "passed"
    if isinstance(exc, CheckFailure):
        return exc.kind
    return "failed" if isinstance(exc, AssertionError) else "error"
