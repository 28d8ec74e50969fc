"""The upgrade from one set of pins to another, as plan steps: what a user would run by hand.

Charts: `helm upgrade --install` at the new chart versions with the same values (the
`up` plan already installs that way). Istio: in place for a patch or one minor
(`istioctl install` with the new istioctl), canary for two minors (a new revision,
workloads moved to it, the old control plane removed), refused beyond that, as
istio.io's upgrade guides allow. kind cannot change a running node's image, so the
clusters keep the old node image; the new Istio must support its Kubernetes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from conformance.core.errors import ConfigError
from conformance.core.profiles import PROFILES
from conformance.provision import logs
from conformance.core.topology import Topology
from conformance.provision.clusters import State
from conformance.provision.commands import APP_NS, ISTIO_NS, Kube, Options
from conformance.provision.plan import up_plan
from conformance.provision.steps import Step
from conformance.core.versions import Versions, check_node_image, minor

ISTIO_CONTROL_PLANE_FILES = ("istio-primary.yaml", "istio-remote.yaml")


@dataclass(frozen=True)
class IstioPath:
    """How Istio moves: none, in-place or canary (with the new revision's name)."""

    strategy: str
    revision: str = ""


def istio_path(old: Versions, new: Versions) -> IstioPath:
    """In place up to one minor, canary for two, refused for more or for a downgrade."""
    if old.istio == new.istio:
        return IstioPath("none")
    (o_major, o_minor), (n_major, n_minor) = minor(old.istio), minor(new.istio)
    patch = lambda v: int(v.split(".")[2]) if v.count(".") >= 2 and v.split(".")[2].isdigit() else 0  # noqa: E731
    if (n_major, n_minor, patch(new.istio)) < (o_major, o_minor, patch(old.istio)) or n_major != o_major:
        raise ConfigError(f"Istio {old.istio} → {new.istio} is not an upgrade this tool performs")
    gap = n_minor - o_minor
    if gap <= 1:
        return IstioPath("in-place")
    if gap == 2:
        return IstioPath("canary", revision=new.istio.replace(".", "-"))
    raise ConfigError(f"Istio {old.istio} → {new.istio} skips {gap - 1} minor versions; Istio supports one minor "
                      "in place or two by canary: upgrade in steps (a versions file per step)")


def changes(old: Versions, new: Versions, profile: str = "promtail", to_profile: str | None = None,
            now: datetime | None = None) -> list[str]:
    """What the upgrade changes, one line each, for the terminal and the report (charts of the profiles in use)."""
    out = []
    to_profile = to_profile or profile
    if to_profile != profile:
        out.append(f"stack profile {profile} → {to_profile} ({PROFILES[to_profile].summary})")
        out.append(f"loki-stack's Loki stops and the Loki chart's Loki mounts its claim {logs.old_claim(old)}, "
                   f"replaying its WAL ({logs.OLD_WAL_DIR}, there {logs.on_new_mount(logs.OLD_WAL_DIR)}): schema v11 "
                   f"boltdb-shipper kept for the stored logs, v13 tsdb from {logs.tsdb_from(now)} if applied now "
                   f"(computed again as the move is applied)")
    in_use = {c.key for p in {profile, to_profile}
              for c in logs.charts_in_use(Topology(path=None, clusters=(), profile=p), new.charts)}
    path = istio_path(old, new)
    if path.strategy != "none":
        how = path.strategy + (f", revision {path.revision}" if path.revision else "")
        out.append(f"istio {old.istio} → {new.istio} ({how})")
    for key, chart in new.charts.items():
        if key not in in_use:
            continue
        before = old.charts.get(key)
        if before is None or before.version != chart.version:
            out.append(f"chart {key} {before.version if before else 'absent'} → {chart.version} (helm upgrade)")
    if old.metallb.version != new.metallb.version:
        out.append(f"chart metallb {old.metallb.version} → {new.metallb.version} (helm upgrade)")
    if old.loki_image_tag != new.loki_image_tag:
        out.append(f"loki image {old.loki_image_tag} → {new.loki_image_tag}")
    if old.node_image != new.node_image:
        out.append(f"kind node image stays {old.node_image}: kind cannot upgrade running nodes "
                   f"(the new pins use {new.node_image}; recreate the clusters to test it)")
    return out


def upgrade_plan(opts: Options, old: Versions, from_profile: str | None = None,
                 clock: logs.Clock = logs.utc_now) -> list[Step]:
    """`up` at the new pins over the running clusters, with Istio's strategy, then workloads restarted onto the new proxies.

    A profile move (opts.topology's profile is not `from_profile`) first stops the old agents and Loki
    (logs.move_steps); the new Loki then mounts the old store (logs.on_the_old_store, v13 from clock()'s tomorrow
    as the move is applied).
    """
    new = opts.versions
    path = istio_path(old, new)
    # The running clusters keep their node image; the new Istio must support it.
    kept = dataclasses.replace(new, node_image=old.node_image, node_kubernetes=old.node_kubernetes)
    check_node_image(kept)
    state = State(opts.cache_dir)
    kube = {c.name: Kube(c, state) for c in opts.topology.clusters}
    move = logs.move_steps(opts.topology, from_profile or opts.topology.profile, kube, old)
    steps = label_changes(up_plan(dataclasses.replace(opts, versions=kept)), old, new, path)
    if move:  # after the clusters phase (nothing to create) and before the stack phase installs the new pipeline
        at = next(i for i, s in enumerate(steps) if s.phase == "stack")
        steps[at:at] = move
        steps = logs.on_the_old_store(steps, old, clock)
    if path.strategy == "canary":
        steps = [_with_revision(s, path.revision) for s in steps]
        steps += [Step("upgrade", c.name, f"move {APP_NS} to revision {path.revision}",
                       kube[c.name].kubectl("label", "namespace", APP_NS, "istio-injection-",
                                            f"istio.io/rev={path.revision}", "--overwrite"), timeout=30)
                  for c in opts.topology.clusters]
    steps += _restart_workloads(opts, kube)
    if path.strategy == "canary":
        p = opts.topology.primary.name
        steps.append(Step("upgrade", p, f"remove the old control plane (Istio {old.istio})",
                          kube[p].istioctl("uninstall", "-y", "--revision", "default"), timeout=300))
    return steps


def label_changes(steps: list[Step], old: Versions, new: Versions, path: IstioPath) -> list[Step]:
    """Title each step that moves a version with what it moves: `upgrade <what> <from> → <to>: <title>`."""
    old_charts = {c.release: c.version for c in (old.metallb, *old.charts.values())}
    out = []
    for step in steps:
        change = _chart_change(step, old_charts) or _istio_change(step, old, new, path)
        what = step.title.removeprefix("install ")
        out.append(dataclasses.replace(step, title=f"upgrade {change}: {what}") if change else step)
    return out


def _chart_change(step: Step, old_versions: dict[str, str]) -> str:
    """`<release> <from> → <to>` for a `helm upgrade --install` whose chart version differs from the old pins."""
    argv = list(step.argv)
    if "--install" not in argv or "--version" not in argv:
        return ""
    release, version = argv[argv.index("--install") + 1], argv[argv.index("--version") + 1]
    before = old_versions.get(release, "absent")
    return f"{release} {before} → {version}" if before != version else ""


def _istio_change(step: Step, old: Versions, new: Versions, path: IstioPath) -> str:
    """`Istio <from> → <to> (<strategy>)` for the control-plane installs, when Istio moves."""
    if path.strategy == "none" or step.argv[:2] != ("istioctl", "install"):
        return ""
    control_plane = any(a.endswith(ISTIO_CONTROL_PLANE_FILES) for a in step.argv)
    return f"Istio {old.istio} → {new.istio}" + (f" ({path.strategy})" if control_plane else "")


def _with_revision(step: Step, revision: str) -> Step:
    """The istiod (primary) and remote-profile installs at the canary revision; everything else unchanged."""
    if step.argv[:2] != ("istioctl", "install") or not any(a.endswith(ISTIO_CONTROL_PLANE_FILES) for a in step.argv):
        return step
    return dataclasses.replace(step, argv=(*step.argv, "--set", f"revision={revision}"),
                               title=f"{step.title} (canary revision {revision})")


def _restart_workloads(opts: Options, kube: dict[str, Kube]) -> list[Step]:
    """Injected workloads get the new proxy only when their pods are recreated."""
    steps = []
    for c in opts.topology.clusters:
        k = kube[c.name]
        steps += [
            Step("upgrade", c.name, f"restart {APP_NS} workloads onto the new proxies",
                 k.kubectl("rollout", "restart", "deployment", "--namespace", APP_NS), timeout=60),
            Step("upgrade", c.name, f"{APP_NS} workloads Ready",
                 k.kubectl("rollout", "status", "deployment", "--namespace", APP_NS, "--timeout=300s"),
                 timeout=320, waits_for="restarted pods with new sidecars"),
        ]
    # The primary's istiod serves every cluster's proxies; a remote has no istiod to ask.
    p = opts.topology.primary.name
    steps.append(Step("upgrade", p, "Istio proxies of every cluster report the new version",
                      kube[p].istioctl("proxy-status", "--istioNamespace", ISTIO_NS), timeout=60))
    return steps
