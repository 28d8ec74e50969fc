"""The topology's parts: which optional parts the stack has, with one-line errors naming file and key."""

from __future__ import annotations

import textwrap

import pytest

from conformance.core.errors import ConfigError
from conformance.core.topology import PARTS, load_topology

CLUSTERS = """
clusters:
  - {name: oke, role: primary, provider: kind}
  - {name: workstation, role: remote, provider: kind}
"""


def load(tmp_path, parts: str):
    path = tmp_path / "topology.yaml"
    path.write_text(CLUSTERS + textwrap.dedent(parts))
    return load_topology(path), path


def test_no_parts_means_none_and_each_part_says_why_it_is_missing(tmp_path):
    topo, path = load(tmp_path, "")
    assert topo.parts == {} and not topo.has("alerting")
    assert topo.part_missing("alerting") == f"alerting is not a part of this stack (topology {path} lists it under parts: when it is)"


def test_a_list_of_names_takes_the_defaults(tmp_path):
    topo, _ = load(tmp_path, "parts: [alerting]")
    assert topo.has("alerting") and topo.part_missing("alerting") is None
    assert topo.parts["alerting"].options == {"remote_alerts": "primary"}


def test_options_are_read(tmp_path):
    topo, _ = load(tmp_path, "parts: {alerting: {remote_alerts: none}}")
    assert str(topo.parts["alerting"]) == "alerting (remote_alerts: none)"


@pytest.mark.parametrize("parts, message", [
    ("parts: {alerts: {}}", f"parts.alerts: unknown part; expected one of {', '.join(PARTS)}"),
    ("parts: {alerting: {remote: none}}", "parts.alerting.remote: unknown key; expected one of remote_alerts"),
    ("parts: {alerting: {remote_alerts: oke}}", "parts.alerting.remote_alerts: unknown value 'oke'; expected one of primary, none"),
    ("parts: alerting", "parts: expected a mapping of part name to its options (or a list of part names)"),
    ("parts: {alerting: yes}", "parts.alerting: expected a mapping of options (remote_alerts)"),
])
def test_mistakes_are_one_line_naming_the_key(tmp_path, parts, message):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, parts)
    assert str(e.value) == f"topology {tmp_path / 'topology.yaml'}: {message}"


def test_with_adds_parts_at_their_defaults_and_refuses_unknown_ones(tmp_path):
    topo, _ = load(tmp_path, "parts: {alerting: {remote_alerts: none}}")
    assert topo.with_parts(["alerting"]).parts["alerting"].options == {"remote_alerts": "none"}  # the file's choice stays
    bare, _ = load(tmp_path, "")
    assert bare.with_parts(["alerting"]).has("alerting")
    with pytest.raises(ConfigError, match=f"^--with nosuchpart: unknown part; expected one of {', '.join(PARTS)}$"):
        bare.with_parts(["nosuchpart"])


def test_every_part_has_options_with_a_default():
    for spec in PARTS.values():
        assert all(values for values in spec.options.values()), spec.name


def test_the_alertmanager_service_is_the_primarys_only(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(textwrap.dedent("""
        clusters:
          - {name: oke, role: primary, provider: endpoints, services: {prometheus: "http://127.0.0.1:1"}}
          - {name: w, role: remote, provider: endpoints, services: {alertmanager: "http://127.0.0.1:2"}}
    """))
    with pytest.raises(ConfigError, match=r"services.alertmanager: alertmanager runs on the primary only"):
        load_topology(path)


def test_app_metrics_is_a_part_without_options(tmp_path):
    topo, _ = load(tmp_path, "parts: [app-metrics]")
    assert str(topo.parts["app-metrics"]) == "app-metrics"
    assert topo.part_missing("app-metrics") is None and topo.part_missing("alerting")


@pytest.mark.parametrize("parts, options", [
    ("parts: [kube-bench]", {"interval": "1h"}),
    ("parts: {kube-bench: {interval: 15m}}", {"interval": "15m"}),
    ("parts: [kubebench]", {"interval": "1h"}),  # the name without its hyphen is the same part
    ("parts: {kubebench: {interval: 15m}}", {"interval": "15m"}),
])
def test_kube_bench_runs_once_an_interval_an_hour_unless_told(tmp_path, parts, options):
    topo, _ = load(tmp_path, parts)
    assert topo.parts["kube-bench"].options == options
    assert topo.has("kubebench") and topo.part_missing("kubebench") is None


def test_with_accepts_the_part_by_either_name_and_refuses_a_third(tmp_path):
    topo, _ = load(tmp_path, "parts: []")
    assert list(topo.with_parts(["kubebench"]).parts) == ["kube-bench"]
    assert list(topo.with_parts(["kube-bench"]).parts) == ["kube-bench"]
    with pytest.raises(ConfigError) as e:
        topo.with_parts(["kube_bench"])
    assert "--with kube_bench: unknown part; expected one of alerting, app-metrics, kube-bench," in str(e.value)


def test_a_kubebench_interval_without_a_schedule_is_one_line(tmp_path):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, "parts: {kubebench: {interval: 5m}}")
    assert str(e.value).endswith("parts.kubebench.interval: unknown value '5m'; expected one of 1h, 15m, 6h, 24h")


def test_kube_state_metrics_is_a_part_without_options(tmp_path):
    topo, path = load(tmp_path, "parts: [kube-state-metrics]")
    assert topo.has("kube-state-metrics") and str(topo.parts["kube-state-metrics"]) == "kube-state-metrics"
    assert load(tmp_path, "")[0].part_missing("kube-state-metrics") == (
        f"kube-state-metrics is not a part of this stack (topology {path} lists it under parts: when it is)")
