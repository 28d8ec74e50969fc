"""The inventory's drift from stack/versions.yaml as a `should` check: its failing path names each service, its pin
and what it runs, and where it was read; nothing to compare is not observed, never a pass."""

from __future__ import annotations

import pytest

from conformance.probes.inventory import Entry, drift, drift_failure
from conformance.core.outcomes import Failed, Unobservable
from conformance.core.versions import load_versions

VERSIONS = load_versions()
PROMETHEUS = VERSIONS.apps["prometheus"].removeprefix("v")  # as its buildinfo says it
AT_THE_PINS = [
    Entry("oke", "prometheus", "observability/prometheus-operated:9090", "Prometheus observability/kps", PROMETHEUS),
    Entry("oke", "loki", "logging/loki:3100", "labels app=loki", VERSIONS.loki_image_tag),
    Entry("oke", "istiod", "istio-system/istiod:15014", "bring-up name", VERSIONS.istio),
    Entry("oke", "kube-state-metrics", "observability/kps-kube-state-metrics:8080", "labels ...",
          problem="kube_state_metrics_build_info is on its telemetry port only"),
]


def test_a_stack_at_the_pins_passes():
    assert drift_failure("oke", AT_THE_PINS, VERSIONS, "promtail") is None


def test_a_drift_fails_the_should_check_naming_each_service_its_pin_and_what_runs():
    entries = AT_THE_PINS + [
        Entry("oke", "grafana", "grafana/grafana:80", "labels app.kubernetes.io/name=grafana", "11.4.0"),
        Entry("oke", "kiali", "istio-system/kiali:20001", "labels app.kubernetes.io/name=kiali",
              problem="GET /api/status: 503"),
        Entry("workstation", "prometheus", "observability/prometheus-operated:9090", "x", "2.0.0"),  # another cluster
    ]
    failure = drift_failure("oke", entries, VERSIONS, "promtail")
    assert isinstance(failure, Failed) and failure.final
    assert failure.headline == (
        f"oke stack versions: 2 of its services differ from the pins of versions.yaml (the versions this suite was "
        f"proven at): grafana: pinned {VERSIONS.apps['grafana']}, running 11.4.0; kiali: pinned "
        f"{VERSIONS.charts['kiali-operator'].version}, running version unknown")
    assert "grafana: grafana/grafana:80 [labels app.kubernetes.io/name=grafana]" in failure.evidence
    assert "kiali: istio-system/kiali:20001 [labels app.kubernetes.io/name=kiali] (GET /api/status: 503)" in failure.evidence


def test_nothing_to_compare_is_not_observed():
    entries = [Entry("oke", "grafana", problem="oke Grafana: not found: no Service ..."),
               Entry("oke", "kube-state-metrics", "observability/ksm:8080", "labels", problem="no build info")]
    with pytest.raises(Unobservable, match=r"^not run: no service of oke was found with a version pinned in "
                                           r"versions.yaml \(the stack inventory says why for each\)$"):
        drift_failure("oke", entries, VERSIONS, "promtail")


def test_services_without_a_build_info_are_no_drift_row():
    """kube-state-metrics and the event exporter are found, but their versions are not read: no row says unknown."""
    assert drift(AT_THE_PINS, VERSIONS, "promtail") == []


def test_istiod_is_compared_with_the_istio_pin():
    entry = Entry("oke", "istiod", "istio-system/istiod:15014", "bring-up name", "1.28.0")
    assert drift([entry], VERSIONS, "promtail") == [f"  oke istiod: pinned {VERSIONS.istio}, running 1.28.0"]


DRIFT = "suites.test_platform::test_the_stack_runs_the_pinned_versions[oke]"


def test_the_check_on_a_real_prometheus_passes_at_its_pin_and_warns_with_another(tmp_path):
    """A real Prometheus (the pinned build) passes; --pins with another Prometheus pin makes the check a failing
    `should` naming both versions, and the run still passes."""
    import yaml

    from conformance.core.versions import VERSIONS_FILE
    from tests.proving_ground import start_prometheus
    from tests.suite_runner import run_suites, write_topology

    prometheus = start_prometheus("primary", tmp_path / "p", cluster="oke")
    try:
        topo = write_topology(tmp_path, [{"name": "oke", "role": "primary", "provider": "endpoints",
                                          "services": {"prometheus": prometheus.url}}])
        at_pin = run_suites(tmp_path / "at", "--topology", str(topo), "-m", "platform", "-k", "pinned")
        doc = yaml.safe_load(VERSIONS_FILE.read_text())
        doc["apps"]["prometheus"] = "v3.0.0"  # a pin the real Prometheus (built at the stack's pin) is not
        other = tmp_path / "other-versions.yaml"
        other.write_text(yaml.safe_dump(doc))
        drifted = run_suites(tmp_path / "drift", "--topology", str(topo), "-m", "platform", "-k", "pinned",
                             "--pins", str(other))
    finally:
        prometheus.stop()
    assert at_pin.code == 0 and at_pin.properties(DRIFT)["outcome"] == "passed", at_pin.output[-3000:]
    assert drifted.code == 0, drifted.output[-3000:]  # a `should`: reported, the run passes without --strict
    assert drifted.failure(DRIFT).startswith(
        "oke stack versions: 1 of its services differ from the pins of other-versions.yaml (the versions this suite "
        f"was proven at): prometheus: pinned v3.0.0, running {PROMETHEUS}"), drifted.failure(DRIFT)
    assert f"prometheus: {prometheus.url} [url]" in drifted.failure(DRIFT)
