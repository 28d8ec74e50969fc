"""The ways a check can end other than passing, which a report tells apart.

A failure carries the broken hop (e.g. "remote Promtail → primary Loki") as the
first line of its message, then the evidence; failures subclass AssertionError so
pytest counts them as failures, not errors. A check that cannot observe its hop
at all raises Unobservable (NotApplicable when the topology declares it absent).
`from_service_error` is the one place a service error becomes an outcome.
"""

from __future__ import annotations

from conformance.core.http import ServiceError


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


class Unobservable(Exception):
    """The check cannot observe its hop here (no URL for a service, no Kubernetes access, a write under --read-only)."""

    declared = False  # the topology says on purpose that the stack lacks it

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotApplicable(Unobservable):
    """The topology declares the stack without what the check judges (`absent:`, a part not listed)."""

    declared = True


def from_service_error(error: ServiceError, *, while_doing: str = "") -> CheckFailure | Unobservable:
    """The outcome of a service error that waiting cannot fix: the suite's own hop to that service is broken,
    or, when the suite's own access is refused (kubeconfig, credentials), the check cannot observe its hop."""
    if error.suite_access:
        return Unobservable(f"not run: {error.headline}")
    evidence = "\n".join(x for x in (f"while waiting for: {while_doing}" if while_doing else "", error.detail) if x)
    return PreconditionUnmet(f"conformance → {error.service}", error.headline.removeprefix(f"{error.service} "), evidence)
