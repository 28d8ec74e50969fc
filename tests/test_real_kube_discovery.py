"""The suites through REAL kube-apiservers on a stack under a user's own names, with a topology that has no
`services:` entry: every service is found by the objects its chart or operator renders, the inventory names each."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.proving_stack import GRAFANA_PASSWORD
from tests.test_real_kube_suites import AREAS, ground_for, run

INVENTORY = [
    "  oke prometheus           observability/prometheus-operated:9090 [Prometheus observability/"
    "kps-kube-prometheus-stack-prometheus]  3.14.0",
    "  oke loki                 logging/loki:3100 [labels app.kubernetes.io/name=loki,"
    "app.kubernetes.io/component=single-binary]  2.9.3",
    "  oke grafana              grafana/grafana:80 [labels app.kubernetes.io/name=grafana]  11.4.0",
    "  oke kiali                istio-system/kiali:20001 [labels app.kubernetes.io/name=kiali]  v2.29.0",
    "  workstation prometheus   observability/prometheus-operated:9090 [Prometheus observability/"
    "kps-kube-prometheus-stack-prometheus]  3.14.0",
]


def test_every_area_passes_on_the_stack_under_other_names(tmp_path: Path) -> None:
    with ground_for(tmp_path, names="other") as ground:
        topology = ground.topology()
        assert all("services" not in c for c in yaml.safe_load(topology.read_text())["clusters"])
        result = run(ground, "-m", AREAS)
    print(result.output.split("collected", 1)[0])
    assert result.code == 0, result.output
    header = result.output.split("collected", 1)[0]
    for line in INVENTORY:
        assert line in header, header
    assert GRAFANA_PASSWORD not in result.output and GRAFANA_PASSWORD not in result.junit.read_text()
