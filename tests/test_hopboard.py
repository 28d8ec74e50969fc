"""A hop one check finds broken stops the checks that need it at once, naming the check, also under xdist."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance.core import hopboard
from conformance.core.outcomes import PreconditionUnmet

REPO = Path(__file__).resolve().parent.parent


def test_the_first_check_to_break_a_hop_is_the_one_named(tmp_path):
    board = hopboard.Board(tmp_path)
    assert board.broken(("logs[workstation]",)) is None
    board.record(hopboard.Broken("logs[workstation]", "workstation Promtail → oke Loki", "canary[workstation]", "wrong label"))
    board.record(hopboard.Broken("logs[workstation]", "x", "label values[workstation]", "later"))
    known = board.broken(("loki[oke]", "logs[workstation]"))
    assert known is not None and known.check == "canary[workstation]" and known.headline == "wrong label"


def test_a_check_without_declared_hops_is_never_stopped(tmp_path):
    token = hopboard.depend_on(None)
    try:
        hopboard.raise_if_known_broken()
    finally:
        hopboard.reset(token)


def test_a_needed_hop_that_broke_raises_a_precondition_naming_the_check(tmp_path):
    board = hopboard.Board(tmp_path)
    board.record(hopboard.Broken("receiver[oke]", "remote Prometheus → oke Prometheus", "primary accepts remote write",
                             "the remote-write receiver is disabled"))
    token = hopboard.depend_on(hopboard.Needs(board, ("remote-write[workstation]", "receiver[oke]")))
    try:
        with pytest.raises(PreconditionUnmet) as e:
            hopboard.raise_if_known_broken()
    finally:
        hopboard.reset(token)
    assert e.value.hop == "not run: needs remote Prometheus → oke Prometheus"
    assert e.value.diagnosis == "the remote-write receiver is disabled (found by primary accepts remote write)"
    assert e.value.kind == "blocked"


CHECKS = '''
import time
import pytest
from conformance.core.eventually import NotYet, Wait, eventually
from conformance.core.outcomes import Failed, PreconditionUnmet

@pytest.mark.hop("receiver")
def test_primary_accepts_remote_write():
    time.sleep(1.0)  # under -n 2 the dependent check is already waiting when this one fails
    raise PreconditionUnmet("remote → primary", "the remote-write receiver is disabled")

@pytest.mark.hop("series", needs=["receiver"])
def test_remote_series_reach_the_primary():
    def probe():
        raise NotYet("no series yet")
    eventually(probe, hop="remote → primary", what="no series", wait=Wait(timeout=60))

@pytest.mark.hop("logs")
def test_canary():
    raise Failed("remote Promtail → Loki", "the canary line arrived under cluster=workstatoin", final=True)

@pytest.mark.hop("labels", needs=["logs"])
def test_label_values():
    time.sleep(2.0)  # starts after the canary has failed: stopped before its body waits
    def probe():
        raise NotYet("no value")
    eventually(probe, hop="remote Promtail → Loki", what="no cluster value", wait=Wait(timeout=60))

@pytest.mark.hop("other")
def test_unrelated_check_waits_its_own_way():
    pass

def test_a_failure_that_is_not_final_breaks_nothing():
    raise Failed("x", "a slow sample")
'''

CONFTEST = '''
from conformance.plugins import hops as hop_plugin
pytest_plugins = ["conformance.plugins.hops"]

def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        hop_plugin.open_board(config)
'''


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_dependents_stop_at_once_when_a_hop_is_known_broken(tmp_path, workers):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_checks.py").write_text(CHECKS)
    scratch = tmp_path / "tmp"  # the run's own TMPDIR: its board must be gone when it ends
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(scratch)}
    env.pop(hopboard.BOARD_ENV, None)
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", *workers],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started
    out = run.stdout
    # Both dependents end long before their 60 s waits, naming the check that established the break.
    assert seconds < 30, out
    assert "receiver is disabled (found by primary accepts remote write)" in out, out
    assert "the canary line arrived under cluster=workstatoin (found by canary)" in out, out
    assert "1 passed" in out and "5 failed" in out, out
    assert not list(scratch.glob("conformance-hops-*"))
