"""The canary's diagnosis on the alloy profile, a self-test per case a real Alloy 1.18.1 was seen in
(../shared/contracts/alloy-1.18.1/README.md): the hop, then the cause read from Alloy's own counters.

(a) Loki unreachable: a closed port here (Loki stopped is the readiness check's verdict: test_suite_logs.py
test_unreachable_loki_fails_within_ten_seconds[alloy]); (b) 400 and 429; (c) a wrong label, which Alloy counts as
success. FakeAlloy keeps the real retry schedule unless a test says otherwise.
"""

from __future__ import annotations

import re
import time
from typing import Callable

from tests.fakes.alloy import FakeAlloy
from tests.proving_ground import closed_port
from tests.proving_stack import start_stack
from tests.test_suite_logs import CANARY, TOO_MANY_LABELS, run

HOP = "remote workstation Alloy → oke Loki"
GIVE_UP = 'msg="final error sending batch, no retries left, dropping data"'


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Evidence, not a margin: poll until it holds (the timeout only ends a broken test)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_closed_port_is_named_from_alloys_counters_while_its_log_is_silent(tmp_path, prometheus_pair):
    """(a) At the real schedule: pushes that get no answer (status_code="-1") since the canary end the wait (or one,
    from an Alloy that never delivered and had 3 refused before); the diagnosis says Alloy's log shows nothing at
    info level until the drop, which is minutes away."""
    port = closed_port()
    refused = f"http://127.0.0.1:{port}/loki/api/v1/push"
    with start_stack(tmp_path, prometheus_pair, profile="alloy", promtail_urls={"workstation": refused}) as stack:
        result = run(stack, "-k", "canary and workstation")
        silent = list(stack.promtails["workstation"].log)  # Alloy's info-level log when the run ended
    failure = result.failure(CANARY.format("workstation"))
    assert result.properties(CANARY.format("workstation"))["outcome"] == "precondition", failure
    assert re.match(rf"{HOP}: no canary line after \d+ s; Alloy cannot connect to host 127\.0\.0\.1:{port} "
                    r"\(([3-9] pushes since the canary|[12] pushes since the canary and \d+ in all) got no answer, "
                    r"none (ever )?accepted\); ", failure), failure
    assert ("Alloy tries a batch 10 times over 4-8.5 min, logging nothing at info level, then drops it as "
            f"ingester_error, with one line at level=error: {GIVE_UP}") in failure, failure
    assert "so the URL Alloy pushes to is wrong: waiting will not help" in failure
    assert silent == []


def test_an_alloy_refused_for_a_while_is_named_at_its_first_try_after_the_canary(tmp_path, prometheus_pair):
    """(a) A real Alloy running for minutes with a wrong URL tries its batch once in 1-4 min: the canary's minute may
    see one try. Here the waits start at 2 s instead of 0.5 s (8-16 s after the third try, not 2-4 s), and the
    suite starts once Alloy has had three pushes refused: one more, after the canary, ends the wait."""
    refused = f"http://127.0.0.1:{closed_port()}/loki/api/v1/push"
    with start_stack(tmp_path, prometheus_pair, profile="alloy", promtail_urls={"workstation": refused}) as stack:
        stack.promtails["workstation"].stop()  # in its place an Alloy with the longer waits, reading the file afresh
        alloy = FakeAlloy(refused, stack.log_file("workstation"), external_labels={"cluster": "workstation"},
                          min_backoff=2.0)
        stack.promtails["workstation"] = alloy.start()
        wait_until(lambda: alloy.statuses.count(-1) >= 3)
        result = run(stack, "-k", "canary and workstation")
    failure = result.failure(CANARY.format("workstation"))
    assert result.properties(CANARY.format("workstation"))["outcome"] == "precondition", failure
    assert re.search(r"Alloy cannot connect to host 127\.0\.0\.1:\d+ \([12] pushes since the canary and [3-9] in all "
                     r"got no answer, none ever accepted\); ", failure), failure


def test_a_400_is_named_at_once_with_alloys_drop(tmp_path, prometheus_pair):
    """(b) 400: Alloy drops the batch at once (ingester_error), so the first look at its counters ends the wait."""
    labels = {"workstation": TOO_MANY_LABELS}  # more label names than Loki 3.7.6's limit of 15: 400
    with start_stack(tmp_path, prometheus_pair, profile="alloy", promtail_labels=labels) as stack:
        host = stack.loki.url.removeprefix("http://")
        result = run(stack, "-k", "canary and workstation")
        logged = list(stack.promtails["workstation"].log)
    failure = result.failure(CANARY.format("workstation"))
    assert result.properties(CANARY.format("workstation"))["outcome"] == "precondition", failure
    assert re.match(rf"{HOP}: no canary line after \d+ s; Loki rejects Alloy's pushes to host {host}: [1-9]\d* "
                    r"answered 400 since the canary was written, none accepted; Alloy drops a rejected batch without "
                    r"retrying \(dropped entries: ingester_error: [1-9]\d*\) and logs Loki's answer at level=error: ",
                    failure), failure
    assert "Loki discarded samples (" in failure and "max_label_names_per_series" in failure
    assert logged and all("level=error" in line and "status=400" in line for line in logged)  # one per rejected batch


def test_a_429_is_named_at_the_timeout_with_the_retries_and_the_drop_to_come(tmp_path, prometheus_pair):
    """(b) 429: Alloy retries it (retry_on_http_429), and Loki may clear: the wait runs out, then the counters say why.
    The schedule is compressed (waits from 50 ms doubling to at most 0.4 s, not 0.5 s to 5 min) so that, however late
    the canary comes after the start-up line's batch, its wait sees tries: a real Alloy's start-up batch would
    be in waits of minutes by then (the counters in all name the cause then, test_alloy_counters.py)."""
    with start_stack(tmp_path, prometheus_pair, profile="alloy") as stack:
        stack.promtails["workstation"].min_backoff, stack.promtails["workstation"].max_backoff = 0.05, 0.4
        stack.loki.rate_limited = True
        host = stack.loki.url.removeprefix("http://")
        result = run(stack, "-k", "canary and workstation", "--timeout-scale", "0.1")  # 6 s: a loaded machine's tries
    failure = result.failure(CANARY.format("workstation"))
    assert result.properties(CANARY.format("workstation"))["outcome"] == "timed_out", failure
    assert re.match(rf"{HOP}: no canary line after 6 s; Loki rate-limits Alloy: [1-9]\d* pushes to host {host} "
                    r"answered 429 since the canary was written, [1-9]\d* batch retries", failure), failure
    assert ("Alloy tries a batch 10 times over 4-8.5 min, logging nothing at info level, then drops it as "
            f"rate_limited, with one line at level=error: {GIVE_UP}") in failure, failure
    assert "Loki discarded samples (rate_limited: " in failure


def test_a_wrong_label_is_named_by_the_label_not_by_alloy(tmp_path, prometheus_pair):
    """(c) Alloy counts the push as sent (204); the canary names the label the line arrived with."""
    with start_stack(tmp_path, prometheus_pair, profile="alloy", promtail_labels={"workstation": {"cluster": "oke"}}) as stack:
        result = run(stack, "-k", "canary and workstation")
        alloy = stack.promtails["workstation"]
        statuses, logged = set(alloy.statuses), list(alloy.log)
    failure = result.failure(CANARY.format("workstation"))
    assert failure.startswith(f"{HOP}: the canary line arrived with cluster=oke, not cluster=workstation"), failure
    assert not any(cause in failure for cause in ("cannot connect", "rejects", "rate-limits", "pushed nothing"))
    assert statuses == {204} and logged == []  # success on Alloy's side, nothing in its log
