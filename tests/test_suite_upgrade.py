"""The `upgrade` continuity checks against the proving ground, and --read-only sending no write anywhere."""

from __future__ import annotations

import json

import pytest

from conformance.http import USER_AGENT
from tests.proving_stack import GRAFANA_PASSWORD, GRAFANA_PASSWORD_ENV, start_stack
from tests.suite_runner import run_suites

ENV = {GRAFANA_PASSWORD_ENV: GRAFANA_PASSWORD}
LINE = "logs::log line from before the upgrade is still queryable[{}]"
SERIES = "metrics::remote series from before the upgrade are still queryable[workstation]"


@pytest.fixture
def stack(tmp_path, prometheus_pair):
    s = start_stack(tmp_path, prometheus_pair)
    yield s
    s.stop()


def phase(stack, name: str, *args: str):
    return run_suites(stack.folder, "--topology", str(stack.topology()), "-m", "upgrade", f"--upgrade-phase={name}",
                      f"--upgrade-state={stack.folder / 'state.json'}", *args, env=ENV)


def test_what_was_written_before_is_found_after(stack):
    before = phase(stack, "before")
    assert before.code == 0, before.output
    state = json.loads((stack.folder / "state.json").read_text())
    assert set(state) == {"log-line/oke", "log-line/workstation", "series/workstation"}
    after = phase(stack, "after")
    assert after.code == 0, after.output
    assert float(after.properties(LINE.format("workstation"))["log_line_age_seconds"]) >= 0
    assert "series_age_seconds" in after.properties(SERIES)


def test_a_line_lost_in_the_upgrade_names_the_store(stack):
    assert phase(stack, "before", "-k", "log_line and workstation").code == 0
    state = json.loads((stack.folder / "state.json").read_text())
    state["log-line/workstation"]["tag"] = "conformance-canary-workstation-lost"  # as if Loki lost it
    (stack.folder / "state.json").write_text(json.dumps(state))
    after = phase(stack, "after", "-k", "log_line and workstation", "--timeout-scale", "0.02")
    failure = after.failure(LINE.format("workstation"))
    assert "oke Loki storage across the upgrade (workstation logs): the line written before the upgrade is gone" in failure
    assert after.properties(LINE.format("workstation"))["outcome"] == "timed_out"


def test_outside_an_upgrade_the_checks_are_deselected_not_skipped(stack):
    """A normal run does not show the upgrade checks at all (they used to show as skipped in every run)."""
    run = run_suites(stack.folder, "--topology", str(stack.topology()), "-m", "upgrade or kiali", env=ENV)
    assert run.code == 0, run.output
    assert SERIES not in run.cases() and LINE.format("oke") not in run.cases()
    assert any(name.startswith("kiali::") for name in run.cases())  # the rest of the run is unchanged


def test_read_only_sends_no_writing_request_to_any_service(stack):
    """Pre-upgrade verification against production: every fake records every request."""
    # Every area but mesh (tests/test_suite_mesh_kube.py proves its read-only run); short waits:
    # the point is what was sent, not the verdicts.
    run = run_suites(stack.folder, "--topology", str(stack.topology()), "-m", "not mesh", "--read-only",
                     "--timeout-scale", "0.05", env=ENV)
    assert "Traceback" not in run.output
    for fake in (stack.loki, stack.grafana, stack.kiali):
        assert fake.sent_by(USER_AGENT), f"{type(fake).__name__}: the suite's requests must be told apart"
        assert [(w.method, w.path) for w in fake.writes() if w.user_agent == USER_AGENT] == []
    # Writes by others (the log agents' pushes) are the system itself; none carries a canary line.
    assert not any("conformance-canary" in stack.log_file(c).read_text() for c in ("oke", "workstation"))
    assert "skipped" in run.properties("suites.test_logs::test_log_canary_reaches_the_primary_loki[oke]")["outcome"]
