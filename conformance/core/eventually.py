"""Eventual assertions: the one helper every wait in the suite goes through.

A probe is called until it returns; it raises NotYet(state) while the system
has not converged, and Failed or PreconditionUnmet to stop at once. On timeout
the failure carries the last state seen. Tenacity does the scheduling.

The transport layer (HTTP and Kubernetes alike) says which service errors are
transient; here a transient one is NotYet with that state (a slow answer is not an
outage), any other ends the wait at once as outcomes.from_service_error says, and a
wait that ends on an unreachable service reports that service unreachable, with its
last error.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Callable, TypeVar

from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from conformance.core import hopboard
from conformance.core.http import ServiceError, Unreachable, single_attempts
from conformance.core.outcomes import CheckFailure, TimedOut, from_service_error
from conformance.core.scoped import set_within

T = TypeVar("T")

_timeout_scale = 1.0
PROGRESS_EVERY = 10.0  # seconds between two progress reports of one wait
# Told of a wait that is still waiting: (hop, what, seconds so far, last state seen). Set by the caller (the pytest
# plugin, around each check); this module knows nothing of where the report goes.
Progress = Callable[[str, str, float, str], None]
_progress: ContextVar[Progress | None] = ContextVar("eventually_progress", default=None)


def reporting_progress(report: Progress | None) -> AbstractContextManager[None]:
    """Inside, every wait longer than PROGRESS_EVERY calls report(hop, what, elapsed, last state) that often."""
    return set_within(_progress, report)


def set_timeout_scale(factor: float) -> None:
    """Multiply every wait's timeout by factor (the --timeout-scale option)."""
    global _timeout_scale
    if factor <= 0:
        raise ValueError("timeout scale must be positive")
    _timeout_scale = factor


def timeout_scale() -> float:
    return _timeout_scale


@dataclass(frozen=True)
class Wait:
    """How long and how often to try."""

    timeout: float = 30.0  # Give up after this many seconds (times --timeout-scale).
    delay: float = 0.25  # Pause after the first unsuccessful attempt.
    max_delay: float = 5.0  # Backoff doubles the pause up to this cap.
    converge: int = 1  # Successes in a row needed before the value is accepted.

    def scaled(self) -> float:
        """The timeout after --timeout-scale."""
        return self.timeout * _timeout_scale

    def with_(self, **changes: float) -> "Wait":
        return replace(self, **changes)


class NotYet(Exception):
    """Raised by a probe while the system has not converged; state is what it saw."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


def eventually(
    probe: Callable[[], T],
    *,
    hop: str,
    what: str,
    wait: Wait = Wait(),
    diagnose: Callable[[], str] | None = None,
    unreachable_is_final: bool = False,
) -> T:
    """Call probe until it returns (wait.converge times in a row); return its last value.

    `what` names what is missing, as the failure's headline says it ("no canary
    line"). Raises TimedOut with the last state when wait.timeout passes, and lets
    Failed / PreconditionUnmet from the probe through at once. A service error that
    cannot change by waiting (4xx other than 429) is a PreconditionUnmet of the suite's hop to that service at once; a
    transient one (timeout, refused connection, 429, 5xx) is waited out, and when the
    wait ends on an unreachable service the TimedOut names that service.
    diagnose() may add a clause to the timeout's headline (e.g. what Loki does have).
    unreachable_is_final makes that unreachable ending final (a short readiness check establishes the hop broken).
    """
    timeout = wait.scaled()
    start = time.monotonic()
    deadline = start + timeout
    streak = 0
    last_state = "no attempt finished"
    unreachable: Unreachable | None = None  # set while the latest attempt found the service unreachable
    report, next_report = _progress.get(), start + PROGRESS_EVERY

    def still_waiting() -> None:
        nonlocal next_report
        now = time.monotonic()
        if report is not None and now >= next_report:
            next_report = now + PROGRESS_EVERY
            report(hop, what, now - start, last_state)

    def attempt() -> T:
        nonlocal streak, last_state, unreachable
        still_waiting()
        unreachable = None
        hopboard.raise_if_known_broken()  # another check found a hop this one needs broken: stop waiting
        try:
            with single_attempts():  # this loop retries; the HTTP layer must not retry inside it too
                value = probe()
        except NotYet as e:
            streak, last_state = 0, e.state
            raise
        except ServiceError as e:
            if not e.transient:
                raise from_service_error(e, while_doing=f"{what} ({hop})") from None
            streak, last_state = 0, e.headline
            unreachable = e if isinstance(e, Unreachable) else None
            raise NotYet(last_state) from None
        streak += 1
        if streak < wait.converge:
            last_state = f"held {streak} of {wait.converge} times in a row"
            raise NotYet(last_state)
        return value

    exponential = wait_exponential(multiplier=wait.delay, max=wait.max_delay)

    def pause(retry_state) -> float:
        # Never sleep past the deadline: the last attempt happens at the deadline, not before it.
        return max(0.0, min(exponential(retry_state), deadline - time.monotonic()))

    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=pause,
        retry=retry_if_exception_type(NotYet),
        reraise=False,
    )
    try:
        return retrying(attempt)
    except CheckFailure:
        raise
    except RetryError:
        elapsed = time.monotonic() - start
        attempts = retrying.statistics.get("attempt_number", 0)
        extra = ""
        if diagnose is not None and unreachable is None:
            try:
                with single_attempts():  # one look, not another retry budget past the deadline
                    extra = diagnose()
            except ServiceError:
                extra = ""  # the same service is failing; the last state already says how
            except Exception as e:  # the diagnosis must never hide the timeout
                extra = f"(diagnosis failed: {type(e).__name__}: {e})"
        evidence = f"last observed ({attempts} attempts): {last_state}"
        if unreachable is not None:
            raise TimedOut(f"conformance → {unreachable.service}",
                           f"{unreachable.service} still unreachable when the wait ended after {elapsed:.0f} s: "
                           f"{unreachable.reason}",
                           f"while waiting for: {what} ({hop}) at {unreachable.url}\n{evidence}",
                           final=unreachable_is_final) from None
        headline = f"{what} after {elapsed:.0f} s"
        if extra:
            headline += f"; {extra}"
        raise TimedOut(hop, headline, evidence) from None
