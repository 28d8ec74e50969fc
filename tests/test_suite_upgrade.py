"""The `upgrade` continuity checks against the proving ground, and --read-only sending no write anywhere."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
import urllib.parse
import urllib.request

import pytest
import yaml

from conformance.core.http import USER_AGENT
from conformance.provision.logs import VALUES as STACK_VALUES
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


TWICE = "logs::no line from before the upgrade is shipped twice[{}]"
VALUES = "logs::cluster label values are unchanged across the upgrade"


def test_the_move_to_alloy_keeps_every_line_once_and_the_cluster_values(stack):
    """promtail → alloy (issue 12): a line from before the move is queryable after it, once, under the same cluster."""
    before = phase(stack, "before", "-m", "logs")
    assert before.code == 0, before.output
    stack.move_to_alloy()  # Promtail stops, Alloy resumes at its positions, Loki 2.9.3 -> 3.7.6 on the old claim
    after = phase(stack, "after", "-m", "logs")  # the topology now says profile: alloy
    assert after.code == 0, after.output
    for cluster in ("oke", "workstation"):
        assert float(after.properties(LINE.format(cluster))["log_line_age_seconds"]) >= 0
        assert after.properties(TWICE.format(cluster))["log_line_copies"] == "1"
    assert after.properties(VALUES)["loki_cluster_values"] == "oke,workstation"


def shipped_twice(stack, marker: str) -> bool:
    """Some line with marker is in the ground's Loki more than once."""
    lines = [v[1] for s in stack.loki.streams() for v in s["values"] if marker in v[1]]
    return len(lines) > len(set(lines))


def test_an_agent_that_reads_again_what_was_shipped_fails_naming_the_copies(stack):
    assert phase(stack, "before", "-m", "logs", "-k", "workstation or cluster_label").code == 0
    stack.move_to_alloy(hand_over_positions=False)  # Alloy without Promtail's positions: every file from offset 0
    # The run after an upgrade starts once the bring-up is done, long after the new agent re-read its files.
    deadline = time.monotonic() + 10
    while not shipped_twice(stack, "conformance-canary-workstation"):  # the same line twice, not two canary lines
        assert time.monotonic() < deadline, "Alloy did not ship the line again"
        time.sleep(0.1)
    after = phase(stack, "after", "-m", "logs", "-k", "workstation and twice")
    failure = after.failure(TWICE.format("workstation"))
    assert ("remote workstation Alloy → oke Loki: the line written before the upgrade is in Loki 2 times: the agent "
            "after the upgrade shipped again what the one before had shipped") in failure
    assert "copies: [('cluster', 'workstation')" in failure
    assert after.properties(TWICE.format("workstation"))["outcome"] == "failed"


def test_a_move_that_changes_the_cluster_label_fails_naming_the_new_value(stack):
    assert phase(stack, "before", "-m", "logs", "-k", "cluster_label").code == 0
    stack.move_to_alloy(labels={"workstation": {"cluster": "workstation-alloy"}})  # a new external_labels value
    with stack.log_file("workstation").open("a") as f:
        f.write("level=info msg=\"alloy started\"\n")
    deadline = time.monotonic() + 10  # Alloy's batch_wait is 1 s: the line is in Loki before the run after
    while not any(s["stream"].get("cluster") == "workstation-alloy" for s in stack.loki.streams()):
        assert time.monotonic() < deadline, "Alloy shipped nothing"
        time.sleep(0.1)
    after = phase(stack, "after", "-m", "logs", "-k", "cluster_label")
    failure = after.failure(VALUES)
    assert ("every Alloy → oke Loki across the upgrade: cluster label values changed: ['oke', 'workstation'] before, "
            "['oke', 'workstation', 'workstation-alloy'] after (new: workstation-alloy)") in failure


def test_what_was_written_before_is_found_after(stack):
    before = phase(stack, "before")
    assert before.code == 0, before.output
    state = json.loads((stack.folder / "state.json").read_text())
    assert set(state) == {"log-line/oke", "log-line/workstation", "series/workstation", "cluster-values"}
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


def test_a_move_whose_new_loki_starts_on_its_own_volume_names_the_store(stack):
    """The move as the bring-up planned it before the store was carried: the check after the move fails."""
    assert phase(stack, "before", "-m", "logs", "-k", "log_line and workstation").code == 0
    stack.move_to_alloy(keep_store=False)
    after = phase(stack, "after", "-m", "logs", "-k", "log_line and workstation", "--timeout-scale", "0.02")
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


FLUSHED, HELD = 15, 16  # lines in chunks before the old Loki dies, lines it then holds only in memory and its WAL


def write_lines(stack, cluster: str, marker: str, first: int, count: int) -> None:
    """Append numbered lines to the cluster's log file and wait until the ground's Loki holds every one."""
    with stack.log_file(cluster).open("a") as f:
        f.writelines(f'level=info msg="{marker} {n}"\n' for n in range(first, first + count))
    deadline = time.monotonic() + 10
    while stored(stack, marker) < first + count:
        assert time.monotonic() < deadline, f"the agent shipped {stored(stack, marker)} of {first + count} lines"
        time.sleep(0.05)


def stored(stack, marker: str) -> int:
    return sum(marker in v[1] for s in stack.loki.streams() for v in s["values"])


def found(stack, cluster: str, marker: str) -> int:
    """The lines with marker a range query over the last hour finds, as Grafana would ask Loki for them."""
    query = urllib.parse.urlencode({"query": f'{{cluster="{cluster}"}} |= "{marker}"', "limit": 1000,
                                    "start": time.time_ns() - 3600 * 10**9, "end": time.time_ns() + 60 * 10**9})
    with urllib.request.urlopen(f"{stack.loki.url}/loki/api/v1/query_range?{query}", timeout=10) as answer:
        streams = json.load(answer)["data"]["result"]
    return sum(len(s["values"]) for s in streams)


def killed_move(stack, marker: str, moved_values: dict | None = None):
    """FLUSHED lines flushed into chunks; the run before (its canary) and HELD more lines, then the old Loki dies
    without flushing and the move runs; the run after. Returns (lines found, lines written, the run after)."""
    write_lines(stack, "workstation", marker, 0, FLUSHED)
    assert stack.loki.flush() > 0  # chunk_idle_period (3m in the 2.16.0 chart's config): chunks on the claim
    assert phase(stack, "before", "-m", "logs", "-k", "log_line and workstation").code == 0
    write_lines(stack, "workstation", marker, FLUSHED, HELD)
    stack.move_to_alloy(killed=True, moved_values=moved_values)
    after = phase(stack, "after", "-m", "logs", "-k", "log_line and workstation", "--timeout-scale", "0.02")
    return found(stack, "workstation", marker), FLUSHED + HELD, after


def test_the_move_after_the_old_loki_was_killed_finds_every_line_written_before(stack):
    """Issue 19: the new Loki replays the old one's WAL (loki-moved.yaml ingester.wal.dir), so nothing is lost."""
    lines, written, after = killed_move(stack, "written-before-the-kill")
    assert (lines, written) == (31, 31)
    assert after.code == 0, after.output
    assert float(after.properties(LINE.format("workstation"))["log_line_age_seconds"]) >= 0


def test_a_move_replaying_the_charts_own_wal_dir_loses_what_the_killed_loki_held(stack):
    """The chart's default WAL dir (/var/loki/wal) is not the old WAL (/data/loki/wal, there /var/loki/loki/wal):
    only the flushed lines are found (15 of 31 on the real binaries too), and the check names the store."""
    values = yaml.safe_load((STACK_VALUES / "loki-moved.yaml").read_text())
    del values["loki"]["structuredConfig"]["ingester"]
    lines, written, after = killed_move(stack, "written-before-the-kill", moved_values=values)
    assert (lines, written) == (FLUSHED, 31)
    failure = after.failure(LINE.format("workstation"))
    assert "oke Loki storage across the upgrade (workstation logs): the line written before the upgrade is gone" in failure


def test_after_a_clean_stop_every_line_is_found_once(stack):
    """The old Loki flushes on shutdown and its WAL is replayed too: an entry in both is found once."""
    write_lines(stack, "workstation", "written-before-the-stop", 0, 31)
    stack.move_to_alloy()
    write_lines(stack, "workstation", "written-after-the-move", 0, 10)
    before, after = (found(stack, "workstation", m) for m in ("written-before-the-stop", "written-after-the-move"))
    assert (before, after) == (31, 10)


@pytest.mark.parametrize("starts,expected", [("tomorrow", 31), ("today", 16)])
def test_a_v13_period_from_the_old_lines_day_hides_their_chunks(stack, starts, expected):
    """The v13 period must start on a day still ahead: from today, today's chunks the old Loki flushed (its WAL
    checkpointed past them) are looked for in the tsdb index, which has none; only the WAL's 16 are replayed."""
    marker = "written-before-the-move"
    write_lines(stack, "workstation", marker, 0, FLUSHED)
    stack.loki.flush()
    stack.loki.checkpoint()
    write_lines(stack, "workstation", marker, FLUSHED, HELD)
    first = min(int(v[0]) for s in stack.loki.streams() for v in s["values"] if marker in v[1])
    day = datetime.fromtimestamp(first / 1e9, tz=timezone.utc).date()  # the first flushed line's day
    stack.move_to_alloy(v13_from=None if starts == "tomorrow" else day.isoformat())
    assert found(stack, "workstation", marker) == expected


def test_remote_series_the_primary_lost_name_its_storage(stack):
    """As if the primary's TSDB had been lost: the moment recorded before the upgrade has no series now."""
    assert phase(stack, "before", "-m", "metrics", "-k", "before_the_upgrade").code == 0
    state = json.loads((stack.folder / "state.json").read_text())
    state["series/workstation"]["at"] -= 3600  # an hour before the ground started: nothing stored then
    (stack.folder / "state.json").write_text(json.dumps(state))
    after = phase(stack, "after", "-m", "metrics", "-k", "before_the_upgrade", "--timeout-scale", "0.05")
    failure = after.failure(SERIES)
    assert after.properties(SERIES)["outcome"] == "failed", failure
    # the label is the one the remote's Prometheus names its cluster by (cluster on this ground)
    assert re.search(r'oke Prometheus storage across the upgrade \(workstation series\): count\(up\{\w+="workstation"\}\) '
                     r"at \d\d:\d\d:\d\d UTC \(before the upgrade\) is empty now: the primary lost its TSDB \(no persistent "
                     r"volume\?\)", failure), failure
