"""A real server of the proving ground as a subprocess: its output in a log file, started until ready, stopped politely."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, ClassVar

import httpx
from tests import web

TAIL = 2000  # characters of the log a failure message carries


def log_tail(path: Path, chars: int | None = TAIL) -> str:
    """The last `chars` of a log file (None: all of it; "" before the program wrote it)."""
    text = path.read_text(errors="replace") if path.exists() else ""
    return text if chars is None else text[-chars:]


def http_ok(*urls: str) -> Callable[[], bool]:
    """A ready probe: each URL, in turn, answers 200 within a second."""
    return lambda: all(web.get(url, timeout=1).status_code == 200 for url in urls)


def http_says(url: str, text: str) -> Callable[[], bool]:
    """A ready probe that also tells the program apart: url answers 200 with text in its body."""
    def probe() -> bool:
        answer = web.get(url, timeout=1)
        return answer.status_code == 200 and text in answer.text
    return probe


def spawn(args: list[str], log_path: Path, *, cwd: Path | None = None, env: dict[str, str] | None = None,
          append: bool = False) -> tuple[subprocess.Popen, IO]:
    """Run args with stdout and stderr to log_path (appended to, or written anew) and no stdin."""
    log = open(log_path, "a" if append else "w")
    try:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, env=env)
    except BaseException:
        log.close()
        raise
    return proc, log


def start_server(args: list[str], log_path: Path, ready: Callable[[], bool], *, name: str, timeout: float,
                 interval: float = 0.1, state: str = "ready", cwd: Path | None = None, env: dict[str, str] | None = None,
                 append: bool = False) -> tuple[subprocess.Popen, IO]:
    """spawn(), then poll ready() until timeout; if the program exits first or stays unready it is stopped, and
    RuntimeError says "<name> exited with <code>" or "<name> not <state> after <timeout> s" with the log's tail."""
    proc, log = spawn(args, log_path, cwd=cwd, env=env, append=append)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log_tail(log_path)}")
            try:
                if ready():
                    # Another server may own a port free_port() handed out twice: this one then exits on its
                    # bind error while the other answers the probe. Still running a moment later: it is ours.
                    time.sleep(0.2)
                    if proc.poll() is None:
                        return proc, log
                    continue
            except httpx.TransportError:
                pass
            time.sleep(interval)
        raise RuntimeError(f"{name} not {state} after {timeout} s:\n{log_tail(log_path)}")
    except BaseException:
        stop_process(proc, log)
        raise


def stop_process(proc: subprocess.Popen | None, log: IO | None, timeout: float = 10.0) -> None:
    """Terminate proc and wait up to timeout, then kill it; close its log."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if log is not None:
        log.close()


@dataclass
class ServerProcess:
    """A server once started: its process and open log (LOG in the subclass's `folder` field); stop() ends it."""

    LOG: ClassVar[str] = ""  # the log's file name in the folder
    proc: subprocess.Popen | None = field(default=None, kw_only=True)
    log: IO | None = field(default=None, repr=False, kw_only=True)

    @property
    def log_path(self) -> Path:
        return self.folder / self.LOG  # type: ignore[attr-defined]

    def log_text(self) -> str:
        """The whole log so far."""
        return log_tail(self.log_path, chars=None)

    def launch(self, args: list[str], ready: Callable[[], bool], **options: Any) -> Any:
        """start_server(args, self.log_path, ready, **options), kept as this server's process and log; returns self."""
        self.proc, self.log = start_server(args, self.log_path, ready, **options)
        return self

    def stop(self) -> None:
        stop_process(self.proc, self.log)
        self.log = None


class LoopbackServer(ServerProcess):
    """A ServerProcess listening on 127.0.0.1 at the subclass's `port` field."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        """host:port, as a Prometheus static_configs target."""
        return f"127.0.0.1:{self.port}"
