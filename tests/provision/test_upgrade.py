"""`nox -s upgrade` orchestration against fake docker, kind, kubectl, helm and istioctl: order, tools, strategy."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from conformance.core.errors import ConfigError
from conformance.provision import logs
from conformance import upgrade
from conformance.provision.plan import Options
from conformance.provision.steps import Facts
from conformance.provision.upgrade_plan import istio_path, upgrade_plan
from conformance.core.versions import VERSIONS_FILE, load_versions
from conformance.core.stack import STACK_DIR
from conformance.core.topology import load_topology
from tests.provision.conftest import TOPOLOGY
from tests.provision.test_contract import index_of
from tests.provision.test_values import CHART_KEYS, key_paths, known, rendered
from tests.provision.test_values import TOPOLOGY as VALUES_TOPOLOGY

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites name="conformance"><testsuite name="conformance" tests="1" failures="0" errors="0" time="1.0">
<properties><property name="pin.istio" value="{istio}"/></properties>
<testcase classname="logs" name="log canary reaches the primary loki[workstation]" time="1.0"><properties>
<property name="outcome" value="passed"/><property name="cluster" value="workstation"/>
<property name="log_propagation_seconds" value="{seconds}"/></properties></testcase></testsuite></testsuites>
"""


def old_pins(folder: Path, istio: str, node: str, kps: str = "80.0.0") -> Path:
    """The current pins with an older Istio (and istioctl), node image and kube-prometheus-stack."""
    doc = yaml.safe_load(VERSIONS_FILE.read_text())
    doc["istio"]["version"] = istio
    doc["tools"]["istioctl"]["version"] = istio
    doc["kind_node_image"] = {"image": f"kindest/node:v{node}.0", "kubernetes": node}
    doc["charts"]["kube-prometheus-stack"]["version"] = kps
    path = folder / "old-versions.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def cached_old_istioctl(cache: Path, fakebin, version: str, pins: Path) -> None:
    """The old istioctl's release archive, as a user puts it in the downloads folder, and its digest pinned:
    the fake inside, posing as that version. The tool cache verifies and unpacks it like a download."""
    import hashlib
    import tarfile

    from conformance.provision import tools
    wrapper = f"#!/bin/sh\nFAKE_VERSION={version} exec {fakebin.dir / 'istioctl'} \"$@\"\n".encode()
    doc = yaml.safe_load(pins.read_text())
    tool = load_versions(pins).tools["istioctl"]
    os_name, arch = tools.host_platform()
    archive = tools.downloads_dir(cache) / tool.url_for(os_name, arch).rsplit("/", 1)[-1]
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(tool.member_for(os_name, arch))
        info.size, info.mode = len(wrapper), 0o755
        tar.addfile(info, io.BytesIO(wrapper))
    doc["tools"]["istioctl"]["sha256"][f"{os_name}-{arch}"] = hashlib.sha256(archive.read_bytes()).hexdigest()
    pins.write_text(yaml.safe_dump(doc, sort_keys=False))


class Suites:
    """Stands in for the child pytest runs: records each phase and leaves a JUnit file like theirs."""

    def __init__(self, fakebin):
        self.fakebin = fakebin
        self.phases: list[tuple[str, Path, int]] = []  # (phase, pins, calls made before it)

    def __call__(self, phase: str, junit: Path, pins: Path, state: Path) -> int:
        self.phases.append((phase, pins, len(self.fakebin.calls())))
        junit.parent.mkdir(parents=True, exist_ok=True)
        istio = load_versions(pins).istio
        junit.write_text(JUNIT.format(istio=istio, seconds="0.40" if phase == "before" else "0.55"))
        return 0


def run(provision, fakebin, *extra: str, clock=logs.utc_now) -> tuple[int, str, Suites]:
    suites = Suites(fakebin)
    out = io.StringIO()
    code = upgrade.main(["--topology", str(TOPOLOGY), "--cache-dir", str(provision.cache), "--reports",
                         str(provision.reports), "--proc", str(provision.proc), "--grafana-url", provision.grafana_url,
                         *extra], out=out, suites=suites, clock=clock)
    return code, out.getvalue(), suites


def test_in_place_upgrade_brings_up_old_pins_runs_suites_upgrades_and_compares(provision, fakebin, tmp_path):
    old = old_pins(tmp_path, "1.28.3", "1.34")
    cached_old_istioctl(provision.cache, fakebin, "1.28.3", old)
    code, out, suites = run(provision, fakebin, "--from", str(old))
    assert code == 0, out
    calls, commands = fakebin.calls(), fakebin.commands()
    assert [(p, pins) for p, pins, _ in suites.phases] == [("before", old), ("after", VERSIONS_FILE)]
    before, after = suites.phases[0][2], suites.phases[1][2]
    # Bring-up at the old pins: the old node image, the old istioctl, the old chart.
    assert index_of(commands, "kind create cluster", "--image kindest/node:v1.34.0") < before
    assert calls[index_of(commands, "istioctl install", "istio-primary.yaml")]["version"] == "1.28.3"
    assert index_of(commands, "helm", "upgrade --install kube-prometheus-stack", "--version 80.0.0") < before
    upgrade_calls = commands[before:after]
    # The upgrade, the way a user does it: no new cluster, helm upgrade to the new chart, the new istioctl in place.
    assert not [c for c in upgrade_calls if "kind create" in c]
    assert index_of(upgrade_calls, "helm", "upgrade --install kube-prometheus-stack", "--version 88.5.3") >= 0
    primary = index_of(upgrade_calls, "istioctl install", "istio-primary.yaml")
    assert calls[before + primary]["version"] is None  # the current pin's istioctl (PATH), not the cached 1.28.3
    assert "revision=" not in upgrade_calls[primary]
    assert index_of(upgrade_calls, "kubectl", "rollout restart deployment --namespace sample") > primary
    # Both runs side by side, with what changed.
    summary = (provision.reports / "upgrade" / "summary.md").read_text()
    assert "| pin.istio | 1.28.3 | 1.29.6 |" in summary
    assert "| logs::log canary reaches the primary loki[workstation] · log_propagation_seconds | 0.40 | 0.55 |" in summary
    assert "istio 1.28.3 → 1.29.6 (in-place)" in out and "chart kube-prometheus-stack 80.0.0 → 88.5.3" in out
    assert any("kind delete cluster" in c for c in commands[after:])  # down afterwards, without --keep


def test_two_minors_go_by_canary_and_the_old_control_plane_is_removed_last(provision, fakebin, tmp_path):
    old = old_pins(tmp_path, "1.27.4", "1.33")
    cached_old_istioctl(provision.cache, fakebin, "1.27.4", old)
    code, out, suites = run(provision, fakebin, "--from", str(old), "--keep")
    assert code == 0, out
    commands = fakebin.commands()[suites.phases[0][2]:suites.phases[1][2]]
    install = index_of(commands, "istioctl install", "istio-primary.yaml", "revision=1-29-6")
    relabel = index_of(commands, "kubectl", "label namespace sample istio-injection- istio.io/rev=1-29-6")
    restart = index_of(commands, "rollout restart deployment --namespace sample")
    remove = index_of(commands, "istioctl uninstall -y --revision default")
    assert install < relabel < restart < remove
    assert not any("kind delete" in c for c in fakebin.commands())  # --keep


def test_dry_run_prints_the_changes_and_the_steps_and_runs_nothing(provision, fakebin, tmp_path):
    code, out, suites = run(provision, fakebin, "--from", str(old_pins(tmp_path, "1.28.3", "1.34")), "--dry-run")
    assert code == 0 and suites.phases == [] and fakebin.calls() == []
    assert "kind node image stays kindest/node:v1.34.0" in out
    assert "helm --kubeconfig" in out and "--version 88.5.3" in out


def test_a_failed_upgrade_step_stops_before_the_second_run_and_leaves_a_bundle(provision, fakebin, tmp_path):
    old = old_pins(tmp_path, "1.28.3", "1.34")
    cached_old_istioctl(provision.cache, fakebin, "1.28.3", old)
    fakebin.scenario({"tool": "helm", "match": ["upgrade", "kube-prometheus-stack", "--version", "88.5.3"],
                      "exit": 1, "stderr": "Error: UPGRADE FAILED: cannot patch \"kube-prometheus-stack-grafana\"\n"})
    code, out, suites = run(provision, fakebin, "--from", str(old))
    assert code == 1
    assert [p for p, _, _ in suites.phases] == ["before"]
    assert "upgrade failed at stack oke: upgrade kube-prometheus-stack 80.0.0 → 88.5.3: kube-prometheus-stack" in out
    assert "UPGRADE FAILED" in out
    assert (provision.reports / "upgrade" / "diagnostics").is_dir()


@pytest.mark.parametrize("old,new,expected", [
    ("1.29.1", "1.29.6", "in-place"), ("1.28.3", "1.29.6", "in-place"), ("1.27.4", "1.29.6", "canary"),
    ("1.29.6", "1.29.6", "none"),
])
def test_istio_strategy_follows_the_minor_gap(old, new, expected):
    v = load_versions()
    assert istio_path(_with_istio(v, old), _with_istio(v, new)).strategy == expected


@pytest.mark.parametrize("old,words", [("1.26.0", "upgrade in steps"), ("1.30.0", "not an upgrade")])
def test_too_far_or_backwards_is_refused(old, words):
    v = load_versions()
    with pytest.raises(ConfigError, match=words):
        istio_path(_with_istio(v, old), v)


def _with_istio(v, version):
    return dataclasses.replace(v, istio=version)


def test_missing_from_file_is_one_line(provision, fakebin, tmp_path):
    code, out, _ = run(provision, fakebin, "--from", str(tmp_path / "nope.yaml"))
    assert code == 2 and out.startswith("error: versions ") and "Traceback" not in out


def test_the_move_to_the_alloy_profile_stops_promtail_before_alloy_ships(provision, fakebin, tmp_path):
    """`nox -s upgrade -- --from OLD --to-profile alloy` (issue 12): one agent per node at any time."""
    old = old_pins(tmp_path, "1.28.3", "1.34")
    cached_old_istioctl(provision.cache, fakebin, "1.28.3", old)
    code, out, suites = run(provision, fakebin, "--from", str(old), "--to-profile", "alloy")
    assert code == 0, out
    assert "stack profile promtail → alloy (the Loki chart (monolithic, Loki 3.x) on the primary" in out
    assert "loki-stack's Loki stops and the Loki chart's Loki mounts its claim storage-loki-stack-0, replaying its " \
           "WAL (/data/loki/wal, there /var/loki/loki/wal): schema v11 boltdb-shipper kept for the stored logs, " \
           "v13 tsdb from " in out
    before, after = suites.phases[0][2], suites.phases[1][2]
    commands = fakebin.commands()
    assert index_of(commands, "helm", "upgrade --install loki-stack") < before  # the old profile first
    moved = commands[before:after]
    for cluster in ("oke", "workstation"):
        stop = index_of(moved, f"kind-{cluster}", "upgrade loki-stack loki-stack", "--reuse-values",
                        "promtail.enabled=false", "--version 2.10.3")
        assert stop < index_of(moved, f"kind-{cluster}", "upgrade --install alloy alloy", "--version 1.11.1")
    assert index_of(moved, "kind-oke", "upgrade --install loki loki", "--version 18.11.0") >= 0
    assert not [c for c in moved if "upgrade --install loki-stack" in c]  # nothing reinstalls Promtail


def test_without_a_move_the_alloy_charts_are_no_change_of_the_default_stack(provision, fakebin, tmp_path):
    code, out, _ = run(provision, fakebin, "--from", str(old_pins(tmp_path, "1.28.3", "1.34")), "--dry-run")
    assert code == 0 and "chart loki " not in out and "chart alloy " not in out and "stack profile" not in out
    assert "stop Promtail" not in out


def test_the_run_after_a_move_judges_the_new_profile(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(upgrade.subprocess, "run", lambda command, **kw: seen.append(command) or
                        type("Done", (), {"returncode": 0})())
    run_suites = upgrade.pytest_suites(TOPOLOGY, "", [], after_profile="alloy")
    for phase in ("before", "after"):
        run_suites(phase, tmp_path / phase / "junit.xml", VERSIONS_FILE, tmp_path / "state.json")
    assert "--profile=alloy" not in seen[0] and "--profile=alloy" in seen[1]


def test_the_dry_run_prints_the_v13_date_and_computes_it_again_when_applied(provision, fakebin, tmp_path):
    old = old_pins(tmp_path, "1.28.3", "1.34")
    cached_old_istioctl(provision.cache, fakebin, "1.28.3", old)
    code, out, _ = run(provision, fakebin, "--from", str(old), "--to-profile", "alloy", "--dry-run",
                       clock=lambda: datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc))
    assert code == 0, out
    assert "v13 tsdb from 2026-12-03 if applied now (computed again as the move is applied)" in out
    assert "(action) the v13 period's first day from the clock now: tomorrow (UTC), or the day after within " \
           "1 h of midnight (2026-12-03 if applied now)" in out
    assert '"from": "<move.tsdb_from>"' in out  # the install's --set-json takes the computed day


def test_the_move_stops_the_old_loki_before_the_new_one_mounts_its_claim_with_both_periods(provision, fakebin, tmp_path):
    """The store moves with the release: loki-stack's Loki flushes and stops, then the Loki chart's Loki mounts it."""
    old = old_pins(tmp_path, "1.28.3", "1.34")
    cached_old_istioctl(provision.cache, fakebin, "1.28.3", old)
    code, out, suites = run(provision, fakebin, "--from", str(old), "--to-profile", "alloy", clock=lambda: NOW)
    assert code == 0, out
    moved = fakebin.commands()[suites.phases[0][2]:suites.phases[1][2]]
    stops = [index_of(moved, f"kind-{c}", "upgrade loki-stack loki-stack", "promtail.enabled=false")
             for c in ("oke", "workstation")]
    old_loki = index_of(moved, "kind-oke", "upgrade loki-stack loki-stack", "--reuse-values", "loki.enabled=false")
    gone = index_of(moved, "kind-oke", "kubectl", "wait --for=delete pod/loki-stack-0 --namespace monitoring")
    new_loki = index_of(moved, "kind-oke", "upgrade --install loki loki", "--version 18.11.0", "loki-moved.yaml",
                        '"claimName": "storage-loki-stack-0"', '"store": "boltdb-shipper"', '"store": "tsdb"',
                        '"from": "2026-12-03"')
    assert max(stops) < old_loki < gone < new_loki  # every Promtail's last batch reaches the old Loki first
    assert not [c for c in moved if "workstation" in c and "loki.enabled=false" in c]  # the remote runs no Loki


NOW = datetime(2026, 12, 2, 0, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize("now,first_day", [
    (NOW, "2026-12-03"),                                                # tomorrow: the migrate-to-tsdb practice
    (datetime(2026, 12, 2, 22, 59, tzinfo=timezone.utc), "2026-12-03"),  # 1 h 1 min before that 00:00 UTC
    (datetime(2026, 12, 2, 23, 0, tzinfo=timezone.utc), "2026-12-04"),   # under MIDNIGHT_MARGIN: the day after
    (datetime(2026, 12, 2, 18, 30, tzinfo=timezone(timedelta(hours=-5))), "2026-12-04"),  # 23:30 UTC: UTC counts
])
def test_the_v13_period_starts_on_a_day_still_ahead_when_the_new_loki_starts(now, first_day):
    assert logs.tsdb_from(now) == first_day


def test_the_margin_outlasts_the_install_that_starts_the_new_loki():
    """The date is computed right before the Loki chart's install, whose --wait ends with Loki started or fails."""
    assert logs.MIDNIGHT_MARGIN > timedelta(seconds=logs.HELM_STEP_TIMEOUT)


def moved_plan(tmp_path, from_profile: str = "promtail", clock=lambda: NOW) -> dict:
    """The rendered values of the Loki chart's install in the upgrade plan to the alloy profile, its facts set by the
    steps before it that set any (the v13 date)."""
    opts = Options(topology=load_topology(VALUES_TOPOLOGY).with_profile("alloy"), versions=load_versions(),
                   cache_dir=tmp_path)
    steps = upgrade_plan(opts, load_versions(), from_profile=from_profile, clock=clock)
    at = next(i for i, s in enumerate(steps) if s.title.startswith(logs.LOKI_CHART_INSTALL))
    facts = Facts()
    for step in steps[:at]:
        if step.action is not None and step.phase == "upgrade":
            step.action(facts)
    return rendered(steps[at].argv, facts)


def test_the_moved_loki_mounts_the_old_claim_and_reads_both_schema_periods(tmp_path):
    values = moved_plan(tmp_path)
    keys = json.loads((CHART_KEYS / "loki.json").read_text())["keys"]
    assert [p for p in key_paths(values) if not known(p, keys)] == []
    assert values["singleBinary"]["persistence"] == {
        "enabled": False, "dataVolumeParameters": {"persistentVolumeClaim": {"claimName": "storage-loki-stack-0"}}}
    # loki-stack's loki 2.16.0 schema_config, kept as it was written; v13 tsdb from tomorrow (UTC).
    assert values["loki"]["schemaConfig"]["configs"] == [
        {"from": "2020-10-24", "store": "boltdb-shipper", "object_store": "filesystem", "schema": "v11",
         "index": {"prefix": "index_", "period": "24h"}},
        {"from": "2026-12-03", "store": "tsdb", "object_store": "filesystem", "schema": "v13",
         "index": {"prefix": "index_", "period": "24h"}}]
    # The old pod's /data/loki/... is /var/loki/loki/... under the chart's mount of the `storage` volume.
    assert values["loki"]["storage"]["filesystem"]["chunks_directory"] == "/var/loki/loki/chunks"
    structured = values["loki"]["structuredConfig"]
    assert structured["storage_config"]["boltdb_shipper"]["active_index_directory"] == "/var/loki/loki/boltdb-shipper-active"
    assert structured["limits_config"]["allow_structured_metadata"] is False  # v11 active: Loki 3.x refuses otherwise


def test_the_moved_loki_replays_the_old_lokis_write_ahead_log():
    """What loki-stack's Loki held only in its WAL when it died is replayed: ingester.wal.dir is the old WAL, seen
    through the new mount, not the chart's default <path_prefix>/wal, where nothing was written."""
    values = yaml.safe_load((STACK_DIR / "values" / "loki-moved.yaml").read_text())
    wal = values["loki"]["structuredConfig"]["ingester"]["wal"]
    assert wal == {"dir": logs.on_new_mount(logs.OLD_WAL_DIR)} and wal["dir"] == "/var/loki/loki/wal"
    assert logs.NEW_DEFAULT_WAL_DIR != wal["dir"]  # the chart's Loki would replay a directory nothing wrote
    assert values["loki"]["storage"]["filesystem"]["chunks_directory"] == logs.on_new_mount(logs.OLD_CHUNKS_DIR)


def test_the_v13_date_is_computed_as_the_move_is_applied_not_when_planned(tmp_path):
    """A plan made at 10:00 and applied after midnight: the v13 period starts the day after the move, not the plan."""
    times = iter([datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc), datetime(2026, 12, 3, 5, 0, tzinfo=timezone.utc)])
    values = moved_plan(tmp_path, clock=lambda: next(times, datetime(2026, 12, 3, 5, 0, tzinfo=timezone.utc)))
    assert values["loki"]["schemaConfig"]["configs"][1]["from"] == "2026-12-04"


def test_a_fresh_alloy_install_keeps_its_own_volume_and_one_v13_period(tmp_path):
    values = moved_plan(tmp_path, from_profile="alloy")  # no move: the plain `up` install
    assert "persistence" not in values["singleBinary"] and "structuredConfig" not in values["loki"]
    assert [c["schema"] for c in values["loki"]["schemaConfig"]["configs"]] == ["v13"]


def test_loki_stacks_loki_keeps_its_store_on_a_claim_and_flushes_on_shutdown():
    loki = yaml.safe_load((STACK_DIR / "values" / "loki-stack.yaml").read_text())["loki"]
    assert loki["persistence"]["enabled"] is True  # chart default false: an emptyDir, gone with the pod
    assert loki["extraArgs"] == {"ingester.flush-on-shutdown": "true"}  # else the WAL keeps the last chunks
