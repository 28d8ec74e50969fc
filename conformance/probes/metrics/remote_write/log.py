"""The sender's own account of its failed sends, read from its log.

Prometheus v3.14.0 logs a retried batch as msg="Failed to send batch, retrying" and
a non-recoverable one as msg="non-recoverable error", each with err=...
(storage/remote/queue_manager.go sendWriteRequestWithBackoff, updateMetrics), from a
logger that carries remote_name and url (NewQueueManager) and repeats a line at
most once a minute (storage/remote/storage.go NewStorage: logging.Dedupe).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from conformance.core.outcomes import Unobservable

SEND_FAILURES = ("Failed to send batch, retrying", "non-recoverable error")
_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


@dataclass(frozen=True)
class LogSource:
    """Where a sender's log is read; `read` is None when nothing gives access, and `unavailable` says why."""

    read: Callable[[], str] | None
    unavailable: str = ""


def logfmt(line: str) -> dict[str, str]:
    """The key=value fields of one logfmt line (slog's text handler, go-kit's logfmt)."""
    fields = {}
    for key, raw in _FIELD.findall(line):
        fields[key] = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\") if raw.startswith('"') else raw
    return fields


def last_send_error(text: str, url: str) -> str | None:
    """The err of the newest failed send to url in the log text, if any."""
    for line in reversed(text.splitlines()):
        if "url=" not in line:
            continue
        fields = logfmt(line)
        if fields.get("msg") in SEND_FAILURES and fields.get("url") == url and fields.get("err"):
            return fields["err"]
    return None


def describe_last_error(source: LogSource | None, url: str) -> str:
    """The last error as a clause: the sender's own words, or why they are not visible."""
    if source is None or source.read is None:
        return f"not visible ({source.unavailable if source else 'the sender log is not read'})"
    try:
        text = source.read()
    except Unobservable as e:  # nothing gives this run the log (provider endpoints without the file)
        return f"not visible ({e.reason})"
    except Exception as e:  # best effort: the verdict stands without the log
        return f"not visible (its log could not be read: {type(e).__name__}: {e})"
    return last_send_error(text, url) or "none in its recent log"
