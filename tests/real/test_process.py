"""The proving ground's subprocess harness: ready, exited and never-ready programs, and a stop that leaves nothing."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.real.process import ServerProcess, log_tail, start_server, stop_process

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
EXITER = [sys.executable, "-c", "import sys; print('bad flag', flush=True); sys.exit(3)"]


def refused() -> bool:
    raise httpx.ConnectError("connection refused")  # what a probe meets before the server listens


@pytest.mark.parametrize("args, ready, message", [
    (EXITER, lambda: False, "demo exited with 3:\nbad flag"),
    (SLEEPER, refused, "demo not live after 0.5 s:\nup"),
    (SLEEPER, lambda: False, "demo not live after 0.5 s:\nup"),
])
def test_a_program_that_does_not_come_up_is_stopped_and_named_with_its_log(tmp_path: Path, args, ready, message):
    with pytest.raises(RuntimeError) as failed:
        start_server(args, tmp_path / "demo.log", ready, name="demo", timeout=0.5, state="live")
    assert str(failed.value).strip() == message


def test_a_ready_program_runs_until_stopped_and_its_log_is_appended_to(tmp_path: Path):
    log_path = tmp_path / "demo.log"
    log_path.write_text("earlier run\n")
    proc, log = start_server(SLEEPER, log_path, lambda: log_tail(log_path).endswith("up\n"), name="demo", timeout=30,
                             append=True)  # ready once it said so
    assert proc.poll() is None
    stop_process(proc, log)
    assert proc.poll() is not None and log.closed
    assert log_tail(log_path, chars=None).startswith("earlier run\n")
    assert log_tail(log_path, chars=3) == "up\n"


def test_log_tail_of_a_log_not_written_yet_is_empty(tmp_path: Path):
    assert log_tail(tmp_path / "nothing.log") == ""


@dataclass
class Sleeper(ServerProcess):
    LOG = "sleeper.log"
    folder: Path


def test_a_server_process_keeps_its_process_and_log_until_stopped(tmp_path: Path):
    server = Sleeper(tmp_path)
    server.launch(SLEEPER, lambda: "up" in server.log_text(), name="sleeper", timeout=30)  # ready once it said so
    assert server.proc.poll() is None and not server.log.closed
    server.stop()
    assert server.proc.poll() is not None and server.log is None
    assert server.log_text() == "up\n"
    server.stop()  # twice is harmless: a fixture's teardown after the test's own
