"""The ordered steps of `up` and `down` as data: phase, cluster, argv, timeout, what each waits for.

Nothing here runs a command; run.py executes the steps and --dry-run prints them.
"""

from __future__ import annotations

from conformance.core.errors import ConfigError
from conformance.provision import dashboards, network
from conformance.provision.clusters import KindConfig, State, check_distinct_subnets, config_path, load_kind_config
from conformance.provision.commands import Kube, Options
from conformance.provision.phases.clusters import clusters_phase
from conformance.provision.phases.images import offline_node_image, preload_check_phase, preload_phase
from conformance.provision.phases.mesh import mesh_phase, network_phase
from conformance.provision.phases.stack import app_phase, stack_phase
from conformance.provision.steps import Facts, Step, When
from conformance.core.versions import check_node_image


def validate(opts: Options) -> dict[str, KindConfig]:
    """Checks that need no machine: node image in Istio's range, one kind config per cluster, distinct subnets."""
    check_node_image(opts.versions)
    topo = opts.topology
    kinds = [c for c in topo.clusters if c.provider == "kind"]
    if kinds and len(kinds) != len(topo.clusters):
        others = ", ".join(f"{c.name} ({c.provider})" for c in topo.clusters if c.provider != "kind")
        raise ConfigError(f"topology {topo.path}: the bring-up creates kind clusters only; {others} "
                          "must be brought up by other means (run the suites with that topology and no kind clusters)")
    configs = {c.name: load_kind_config(config_path(c)) for c in kinds}
    check_distinct_subnets(configs)
    if opts.offline is not None:
        dashboards.check_offline_dir(opts.offline, dashboards.declared(profile=opts.topology.profile))
    return configs


# -- up -------------------------------------------------------------------------------------------


def up_plan(opts: Options) -> list[Step]:
    """Every step of `up`, in order."""
    configs = validate(opts)
    state = State(opts.cache_dir)
    topo = opts.topology
    kube = {c.name: Kube(c, state) for c in topo.clusters}
    steps = clusters_phase(opts, configs, state, kube)
    if opts.loads_images:
        steps += preload_phase(opts)
    steps += network_phase(opts, configs, state, kube)
    steps += mesh_phase(opts, state, kube)
    steps += stack_phase(opts, state, kube)
    steps += app_phase(opts, kube)
    if opts.loads_images:
        steps += preload_check_phase(opts, kube)
    if opts.offline is None:
        return steps
    return offline_node_image(network.localize(steps, opts.offline), opts.versions.node_image)


# -- down -----------------------------------------------------------------------------------------


def down_plan(opts: Options) -> list[Step]:
    """Delete only the kind clusters whose marker this tool wrote and whose container is still the one it made."""
    state = State(opts.cache_dir)
    names = [c.name for c in opts.topology.clusters if c.provider == "kind"]
    steps = [Step("down", None, "list existing kind clusters", ("kind", "get", "clusters"), timeout=30,
                  parse=lambda out, f: f.set("kind.clusters", out.split()))]
    for name in names:
        ours = When(f"{name} carries our marker", lambda f, n=name: bool(f.get(f"{n}.ours")))
        steps += [
            Step("down", name, "control-plane container id",
                 ("docker", "inspect", "--format", "{{.Id}}", f"{name}-control-plane"), timeout=30,
                 capture=f"{name}.container_id", tolerate=("No such object", "No such container"),
                 when=When(f"{name} exists", lambda f, n=name: n in (f.get("kind.clusters") or []))),
            Step("down", name, "check our marker", action=lambda f, n=name: _mark_ours(n, state, f)),
            Step("down", name, "delete kind cluster",
                 ("kind", "delete", "cluster", "--name", name, "--kubeconfig", str(state.host_kubeconfig(name))),
                 timeout=180, when=ours, parallel="delete"),
        ]
    for name in names:
        steps.append(Step("down", name, "forget cluster state", when=When(f"{name} was deleted", lambda f, n=name: bool(f.get(f"{n}.ours"))),
                          action=lambda f, n=name: _forget(state, n)))
    return steps


def _mark_ours(name: str, state: State, f: Facts) -> None:
    marker = state.read_marker(name)
    exists = name in (f.get("kind.clusters") or [])
    ours = bool(exists and marker and marker.get("container_id") == f.get(f"{name}.container_id"))
    f.set(f"{name}.ours", ours)
    if exists and not ours:
        f.set(f"{name}.skipped", "not created by this tool (no matching marker); left alone")


def _forget(state: State, name: str) -> None:
    d = state.dir(name)
    if d.is_dir():
        for p in sorted(d.rglob("*"), reverse=True):
            p.unlink() if p.is_file() or p.is_symlink() else p.rmdir()
        d.rmdir()
