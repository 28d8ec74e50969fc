"""Phase clusters: find what exists, refuse clusters this tool did not make, create the rest, write kubeconfigs."""

from __future__ import annotations

from conformance.provision.clusters import KindConfig, State, internal_kubeconfig, write_private
from conformance.provision.commands import KIND_WAIT, Kube, Options, StepError, cluster_missing
from conformance.provision.steps import Facts, Step


def clusters_phase(opts: Options, configs: dict[str, KindConfig], state: State, kube: dict[str, Kube]) -> list[Step]:
    """Find what exists, refuse clusters we do not own, create the rest in parallel, write kubeconfigs."""
    topo, image = opts.topology, opts.versions.node_image
    names = [c.name for c in topo.clusters]
    steps = [Step("clusters", None, "list existing kind clusters", ("kind", "get", "clusters"), timeout=30,
                  parse=lambda out, f: f.set("kind.clusters", out.split()))]
    for name in names:
        steps.append(Step("clusters", name, "ownership of an existing cluster",
                          action=_check_ownership(name, configs[name], image, state)))
    for name in names:
        cfg = configs[name]
        steps.append(Step(
            "clusters", name, "create kind cluster",
            ("kind", "create", "cluster", "--name", name, "--config", str(cfg.path), "--image", image,
             "--kubeconfig", str(state.host_kubeconfig(name)), "--wait", KIND_WAIT),
            timeout=420, when=cluster_missing(name), parallel="create", waits_for="control plane Ready"))
    for name in names:
        steps += [
            Step("clusters", name, "control-plane container id",
                 ("docker", "inspect", "--format", "{{.Id}}", f"{name}-control-plane"), timeout=30,
                 capture=f"{name}.container_id"),
            Step("clusters", name, "write or verify ownership marker",
                 action=lambda f, n=name: _record_or_verify(n, configs[n], image, state, f)),
            Step("clusters", name, "control-plane address on the kind network",
                 ("docker", "inspect", "--format", "{{ .NetworkSettings.Networks.kind.IPAddress }}", f"{name}-control-plane"),
                 timeout=30, capture=f"{name}.control_plane_ip", ready=lambda out: bool(out.strip())),
            Step("clusters", name, "internal kubeconfig", ("kind", "get", "kubeconfig", "--internal", "--name", name),
                 timeout=30, secret=True, capture=f"{name}.kubeconfig_internal"),
            Step("clusters", name, "write kubeconfig (server = control-plane address)",
                 action=lambda f, n=name: write_private(state.kubeconfig(n), internal_kubeconfig(
                     str(f[f"{n}.kubeconfig_internal"]), n, str(f[f"{n}.control_plane_ip"])))),
            Step("clusters", name, "nodes Ready",
                 kube[name].kubectl("wait", "--for=condition=Ready", "nodes", "--all", "--timeout=180s"),
                 timeout=200, waits_for="all nodes Ready"),
        ]
    # One Istio network: pods reach the other cluster's pods and services directly,
    # so each node routes the other's ranges via its container (kind_provisioner.sh connect_kind_clusters).
    for name in names:
        for other in names:
            if other == name:
                continue
            for cidr in (configs[other].pod_subnet, configs[other].service_subnet):
                steps.append(Step("clusters", name, f"route to {other} {cidr}",
                                  ("docker", "exec", f"{name}-control-plane", "ip", "route", "replace", cidr,
                                   "via", f"@{{{other}.control_plane_ip}}"), timeout=30))
    return steps


def _check_ownership(name: str, cfg: KindConfig, image: str, state: State):
    def check(f: Facts) -> None:
        exists = name in (f.get("kind.clusters") or [])
        f.set(f"{name}.exists", exists)
        f.set(f"{name}.created", not exists)
        marker = state.read_marker(name)
        if not exists:
            state.marker(name).unlink(missing_ok=True)  # a stale marker from a cluster deleted by hand
            return
        if marker is None:
            raise StepError(f"a kind cluster named {name} exists that this tool did not create; delete it "
                            f"(kind delete cluster --name {name}) or list it with provider: existing in the topology")
        if marker.get("config_sha256") != cfg.sha256 or marker.get("image") != image:
            raise StepError(f"kind cluster {name} was created from another {cfg.path.name} or node image; "
                            "run `nox -s down` to delete it, then `nox -s up`")
    return check


def _record_or_verify(name: str, cfg: KindConfig, image: str, state: State, f: Facts) -> None:
    """Mark a cluster we just created; for a reused one, the marker must name this very container."""
    container = str(f[f"{name}.container_id"])
    if f.get(f"{name}.created"):
        state.write_marker(name, container, cfg.sha256, image)
        return
    marker = state.read_marker(name) or {}
    if marker.get("container_id") != container:
        raise StepError(f"kind cluster {name} was recreated outside this tool (its container is not the one we made); "
                        f"delete it (kind delete cluster --name {name}) or list it with provider: existing")
