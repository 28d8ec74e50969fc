"""The events suite with the exporter's chart installed in a namespace of a user's choosing (`events`), found by its
Deployment's labels: the probe Event is made there and reaches the primary Loki; an exporter whose config.namespace
narrows it to another namespace is named with the namespace the check found and used."""

from __future__ import annotations

from pathlib import Path

from tests.proving_events import CONTROL_PLANE, exporter_config, start_events_ground
from tests.proving_realkube import ADDRESSES
from tests.real.ground import in_namespace
from tests.test_suite_events import CASE, HOP, run

NAMESPACE = "events"


def test_the_probe_event_is_made_where_the_exporter_was_found(tmp_path: Path) -> None:
    for ground in in_namespace(lambda ns: start_events_ground(tmp_path / "ground", ns, exporter_namespace=NAMESPACE),
                               (*CONTROL_PLANE, "kubernetes-event-exporter"), ADDRESSES.values()):
        healthy = run(ground)
        passed = [healthy.properties(CASE.format(c))["outcome"] for c in ("oke", "workstation")]  # before the next run
        narrowed = exporter_config("workstation", ground.loki_push_url)
        narrowed["namespace"] = "monitoring"  # the bring-up's namespace: not the one this exporter runs in
        ground.configure("workstation", narrowed)
        broken = run(ground, "-k", "workstation", "--timeout-scale", "0.2")
    assert healthy.code == 0, healthy.output
    assert "  oke event-exporter       events/kubernetes-event-exporter" in healthy.output
    assert passed == ["passed", "passed"]
    failure = broken.failure(CASE.format("workstation"))
    assert broken.properties(CASE.format("workstation"))["outcome"] == "timed_out", failure
    assert HOP.format("workstation") in failure
    # The Event made in the namespace found, and the exporter's silence since named (it watches monitoring only).
    assert f"the Event {NAMESPACE}/conformance-event-workstation-" in failure
    assert "is in workstation's API server; workstation's exporter pushed here before the Event was created" in failure
