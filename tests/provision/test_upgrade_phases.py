"""The upgrade's dry run shows its phases and each change as "from → to"; equal pins upgrade nothing (issue 22, item 5)."""

from __future__ import annotations

import re

from conformance.core.versions import VERSIONS_FILE
from tests.provision.test_upgrade import old_pins, run


def test_the_dry_run_lists_the_four_phases_then_down(provision, fakebin, tmp_path):
    old = old_pins(tmp_path, "1.28.3", "1.34")
    code, out, suites = run(provision, fakebin, "--from", str(old), "--dry-run")
    assert code == 0 and suites.phases == [] and fakebin.calls() == []
    phases = [line.strip() for line in out.splitlines() if re.match(r"  [1-4]/4 ", line)]
    assert [p.split(" ", 1)[0] for p in phases] == ["1/4", "2/4", "3/4", "4/4"]
    assert phases[0] == f"1/4 bring-up at the old pins ({old}): `nox -s up -- --versions {old} --dry-run` lists its steps"
    assert phases[2].startswith(f"3/4 upgrade to {VERSIONS_FILE}: the ") and "(5 moving a version)" in phases[2]
    assert "  then down: the clusters are deleted" in out
    assert [line for line in out.splitlines() if line.startswith("-- phase")] == [
        "-- phase clusters", "-- phase network", "-- phase mesh", "-- phase stack", "-- phase app", "-- phase upgrade"]


def test_each_step_that_moves_a_version_says_from_and_to(provision, fakebin, tmp_path):
    code, out, _ = run(provision, fakebin, "--from", str(old_pins(tmp_path, "1.28.3", "1.34")), "--dry-run", "--keep")
    assert code == 0, out
    moving = [line.split(". ", 1)[1] for line in out.splitlines() if re.match(r" *\d+\. .* → ", line)]
    assert moving == [
        "[mesh] oke upgrade Istio 1.28.3 → 1.29.6 (in-place): istiod (primary, externalIstiod)",
        "[mesh] oke upgrade Istio 1.28.3 → 1.29.6: east-west gateway",
        "[mesh] workstation upgrade Istio 1.28.3 → 1.29.6 (in-place): Istio remote profile",
        "[stack] oke upgrade kube-prometheus-stack 80.0.0 → 88.5.3: kube-prometheus-stack (receiver, Grafana)",
        "[stack] workstation upgrade kube-prometheus-stack 80.0.0 → 88.5.3: kube-prometheus-stack "
        "(Prometheus remote-writing to the primary)",
    ]
    assert "  then the clusters stay up (--keep)" in out


def test_a_canary_step_says_its_strategy_and_revision(provision, fakebin, tmp_path):
    code, out, _ = run(provision, fakebin, "--from", str(old_pins(tmp_path, "1.27.4", "1.33")), "--dry-run")
    assert code == 0, out
    assert ("[mesh] oke upgrade Istio 1.27.4 → 1.29.6 (canary): istiod (primary, externalIstiod) "
            "(canary revision 1-29-6)") in out


def test_equal_pins_upgrade_nothing_and_bring_nothing_up(provision, fakebin):
    for extra in (["--dry-run"], []):
        code, out, suites = run(provision, fakebin, "--from", str(VERSIONS_FILE), *extra)
        assert (code, suites.phases, fakebin.calls()) == (0, [], [])
        assert out == (f"nothing to upgrade: {VERSIONS_FILE} and {VERSIONS_FILE} pin the same versions for the "
                       "promtail profile; no cluster is created or changed\n")


def test_only_a_newer_node_image_is_nothing_to_upgrade(provision, fakebin, tmp_path):
    import yaml
    doc = yaml.safe_load(VERSIONS_FILE.read_text())
    doc["kind_node_image"] = {"image": "kindest/node:v1.34.0", "kubernetes": "1.34"}
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, out, _ = run(provision, fakebin, "--from", str(old), "--dry-run")
    assert code == 0 and out.startswith("nothing to upgrade: ") and fakebin.calls() == []
