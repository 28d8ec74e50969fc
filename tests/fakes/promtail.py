"""FakePromtail: a file-tailing log agent that pushes JSON batches to a Loki URL like Promtail's client.

Promtail's behaviour kept here: only lines appended after start are read (file target with a fresh
positions file), batches are flushed after at most `batch_wait`, a 4xx other than 429 drops the batch,
429 and 5xx (and connection errors) are retried with exponential backoff, then dropped.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

JOB = "conformance-canary"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only: ignore proxy env vars


@dataclass
class PushRecord:
    """One HTTP push attempt: status 0 means the connection failed."""

    status: int
    entries: int
    body: str


class FakePromtail:
    """Tails `path` in a background thread and ships new lines to `loki_url` (…/loki/api/v1/push)."""

    def __init__(
        self,
        loki_url: str,
        path: str | Path,
        external_labels: dict[str, str] | None = None,  # wrong/missing cluster label: failure-modes #6
        batch_wait: float = 0.2,
        min_backoff: float = 0.05,
        max_backoff: float = 0.5,
        max_retries: int = 5,
        poll_interval: float = 0.02,
    ) -> None:
        self.loki_url = loki_url
        self.path = Path(path)
        self.external_labels = dict(external_labels or {})
        self.batch_wait = min(batch_wait, 0.2)
        self.min_backoff, self.max_backoff, self.max_retries = min_backoff, max_backoff, max_retries
        self.poll_interval = poll_interval
        # Fault switches -------------------------------------------------------
        self.paused = False  # reads nothing, offsets do not move: Running but shipping nothing (failure-modes #5)
        self.extra_delay_seconds = 0.0  # each batch waits this long before it is sent (slow/backlogged client)
        # Observations ----------------------------------------------------------
        self.pushes: list[PushRecord] = []
        self.sent_entries = 0
        self.dropped_entries = 0  # promtail_dropped_entries_total
        self.read_bytes = 0  # promtail_read_bytes_total
        self._queue: queue.Queue[tuple[tuple[tuple[str, str], ...], int, str]] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._offset = 0
        self._partial = b""

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> "FakePromtail":
        self._stop.clear()
        self._offset = self.path.stat().st_size if self.path.exists() else 0
        self._threads = [
            threading.Thread(target=self._tail_loop, name="promtail-tail", daemon=True),
            threading.Thread(target=self._send_loop, name="promtail-send", daemon=True),
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Stop reading, flush what is queued, and join the threads."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []

    @property
    def running(self) -> bool:
        return bool(self._threads) and not self._stop.is_set()

    def __enter__(self) -> "FakePromtail":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def statuses(self) -> list[int]:
        """HTTP status of every push attempt, in order (0 = connection failed)."""
        return [p.status for p in self.pushes]

    # -- sources ---------------------------------------------------------------------
    def file_labels(self) -> dict[str, str]:
        return {**self.external_labels, "job": JOB, "filename": str(self.path)}

    def emit(self, line: str, namespace: str, pod: str, container: str, app: str) -> None:
        """Ship `line` as if read from a pod's stdout by the kubernetes-pods job."""
        labels = {
            **self.external_labels,
            "namespace": namespace,
            "pod": pod,
            "container": container,
            "app": app,
            "job": f"{namespace}/{app}",
            "filename": f"/var/log/pods/{namespace}_{pod}_fake-uid/{container}/0.log",
            "stream": "stdout",
        }
        item = (tuple(sorted(labels.items())), time.time_ns(), line)
        if self.running:
            self._queue.put(item)
        else:
            self._ship([item])

    def _tail_loop(self) -> None:
        while not self._stop.is_set():
            if not self.paused:
                self._read_new_lines()
            self._stop.wait(self.poll_interval)
        if not self.paused:
            self._read_new_lines()

    def _read_new_lines(self) -> None:
        if not self.path.exists():
            return
        size = self.path.stat().st_size
        if size < self._offset:  # truncated or rotated: start over, as Promtail does
            self._offset, self._partial = 0, b""
        if size == self._offset:
            return
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read(size - self._offset)
        self._offset += len(chunk)
        self.read_bytes += len(chunk)
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        key = tuple(sorted(self.file_labels().items()))
        for raw in complete:
            self._queue.put((key, time.time_ns(), raw.decode(errors="replace")))

    # -- sending ------------------------------------------------------------------------
    def _send_loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=0.05)
            except queue.Empty:
                if self._stop.is_set() and not any(t.is_alive() for t in self._threads if t.name == "promtail-tail"):
                    return
                continue
            batch = [first]
            deadline = time.monotonic() + self.batch_wait
            while (left := deadline - time.monotonic()) > 0:
                try:
                    batch.append(self._queue.get(timeout=left))
                except queue.Empty:
                    break
            if self.extra_delay_seconds:
                time.sleep(self.extra_delay_seconds)
            self._ship(batch)

    def _ship(self, batch: list[tuple[tuple[tuple[str, str], ...], int, str]]) -> None:
        streams: dict[tuple[tuple[str, str], ...], list[list[str]]] = {}
        for key, ts, line in batch:
            streams.setdefault(key, []).append([str(ts), line])
        body = json.dumps({"streams": [{"stream": dict(k), "values": v} for k, v in streams.items()]}).encode()
        backoff = self.min_backoff
        for attempt in range(self.max_retries + 1):
            status, text = self._post(body)
            self.pushes.append(PushRecord(status, len(batch), text))
            if 200 <= status < 300:
                self.sent_entries += len(batch)
                return
            if 400 <= status < 500 and status != 429:
                break  # not retryable: Promtail logs "final error sending batch" and drops it
            if attempt < self.max_retries:
                time.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
        self.dropped_entries += len(batch)

    def _post(self, body: bytes) -> tuple[int, str]:
        request = urllib.request.Request(
            self.loki_url, data=body, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "promtail/fake"},
        )
        try:
            with _OPENER.open(request, timeout=5) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as exc:
            return 0, str(exc)
