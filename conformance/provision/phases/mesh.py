"""Phases network and mesh: MetalLB's pools, Istio primary-remote with its remote secrets, until each remote is synced."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import urlparse

import yaml

from conformance.provision.clusters import KindConfig, State, is_loopback, metallb_pools
from conformance.provision.commands import (
    HELM_STEP_TIMEOUT, ISTIO_NS, MANIFESTS, METALLB_NS, VALUES, Kube, Options, StepError, helm_install,
    lb_address_step,
)
from conformance.provision.parts import Context, plan_parts
from conformance.provision.steps import Step


def network_phase(opts: Options, configs: dict[str, KindConfig], state: State, kube: dict[str, Kube]) -> list[Step]:
    """MetalLB on every cluster with its own slice of the kind network."""
    names = [c.name for c in opts.topology.clusters]
    metallb = opts.versions.metallb
    steps = [Step("network", None, "kind network subnets",
                  ("docker", "network", "inspect", "kind", "--format", "{{json .IPAM.Config}}"), timeout=30,
                  parse=lambda out, f: [f.set(f"{n}.metallb_pool", p) for n, p in metallb_pools(out, names).items()])]
    for name in names:
        pool_file = state.file(name, "metallb-pool.yaml")
        steps += [
            Step("network", name, "install MetalLB",
                 helm_install(kube[name], metallb, METALLB_NS, [VALUES / "metallb.yaml"]),
                 timeout=HELM_STEP_TIMEOUT, waits_for="MetalLB controller and speaker Ready"),
            Step("network", name, "render MetalLB address pool",
                 action=lambda f, n=name, p=pool_file: _render_pool(p, str(f[f"{n}.metallb_pool"]))),
            # The pool's validating webhook answers only once the controller serves it.
            Step("network", name, "apply MetalLB address pool", kube[name].kubectl("apply", "--filename", str(pool_file)),
                 timeout=120, retry=True, poll=5, waits_for="MetalLB webhook accepting the pool"),
        ]
    return steps


def _render_pool(dest: Path, pool: str) -> None:
    docs = list(yaml.safe_load_all((MANIFESTS / "metallb-pool.yaml").read_text()))
    docs[0]["spec"]["addresses"] = [pool]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def _istio_network() -> str:
    doc = yaml.safe_load((MANIFESTS / "istio-primary.yaml").read_text())
    return doc["spec"]["values"]["global"]["network"]


def mesh_phase(opts: Options, state: State, kube: dict[str, Kube]) -> list[Step]:
    """Istio primary-remote as istio.io documents it, with a non-loopback remote secret."""
    topo = opts.topology
    p = topo.primary.name
    kp = kube[p]
    network = _istio_network()
    overlays = plan_parts(Context(topo, opts.versions, lambda name: kube[name], lb_address_step)).istio_overlays.get(p, [])
    steps = [
        Step("mesh", p, "install istiod (primary, externalIstiod)",
             kp.istioctl("install", "-y", "--filename", str(MANIFESTS / "istio-primary.yaml"),
                         *(a for f in overlays for a in ("--filename", str(f))),
                         "--set", f"values.global.multiCluster.clusterName={p}"),
             timeout=600, waits_for="istiod Ready"),
        Step("mesh", p, "install east-west gateway",
             kp.istioctl("install", "-y", "--filename", str(MANIFESTS / "istio-eastwest.yaml")),
             timeout=600, waits_for="istio-eastwestgateway Ready"),
        lb_address_step("mesh", kp, ISTIO_NS, "istio-eastwestgateway", f"{p}.eastwest_ip", "the east-west gateway"),
        Step("mesh", p, "expose istiod through the east-west gateway",
             kp.kubectl("apply", "--filename", str(MANIFESTS / "istio-expose-istiod.yaml")), timeout=60),
    ]
    for remote in topo.remotes:
        r = remote.name
        kr = kube[r]
        secret_file = state.file(r, "istio-remote-secret.yaml")
        steps += [
            Step("mesh", r, "istio-system namespace", kr.kubectl("create", "namespace", ISTIO_NS), timeout=30,
                 tolerate=("AlreadyExists",)),
            Step("mesh", r, "name the primary as control plane",
                 kr.kubectl("annotate", "namespace", ISTIO_NS, f"topology.istio.io/controlPlaneClusters={p}", "--overwrite"),
                 timeout=30),
            Step("mesh", r, "install Istio remote profile",
                 kr.istioctl("install", "-y", "--filename", str(MANIFESTS / "istio-remote.yaml"),
                             "--set", f"values.istiodRemote.injectionPath=/inject/cluster/{r}/net/{network}",
                             "--set", f"values.global.remotePilotAddress=@{{{p}.eastwest_ip}}"),
                 timeout=600, waits_for="remote webhook and config"),
            # Never the kubeconfig's loopback address: istiod runs in the other cluster (istio/istio#58047).
            Step("mesh", r, "remote secret for the primary's istiod",
                 kr.istioctl("create-remote-secret", "--name", r, "--server", f"https://@{{{r}.control_plane_ip}}:6443"),
                 timeout=60, secret=True, stdout_to=secret_file),
            Step("mesh", r, "remote secret points at a non-loopback API server",
                 action=lambda f, path=secret_file: check_remote_secret(path)),
            Step("mesh", p, f"apply {r}'s remote secret", kp.kubectl("apply", "--filename", str(secret_file)), timeout=60),
            remote_synced_step(kp, r),
        ]
    return steps


# istiod's first sync of a remote: its informers list every Service, Pod and EndpointSlice there.
REMOTE_SYNC_TIMEOUT = 300.0


def remote_synced_step(kp: Kube, remote: str) -> Step:
    """A bounded wait, backing off, until every istiod on the primary reports the remote `synced`."""
    return Step("mesh", kp.cluster.name, f"istiod synced with {remote}", kp.istioctl("remote-clusters"),
                timeout=REMOTE_SYNC_TIMEOUT, retry=True, poll=1, max_poll=15,
                ready=lambda out: remote_cluster_state(out, remote) == "synced",
                state=lambda out: f"istioctl remote-clusters shows {remote} {remote_cluster_state(out, remote)}",
                waits_for=f"istioctl remote-clusters to show {remote} synced")


def remote_cluster_state(out: str, remote: str) -> str:
    """`synced` when every istiod lists the remote synced; else what it shows (docs/real-stack.md#remote-clusters)."""
    lines = out.splitlines()
    header = next((i for i, line in enumerate(lines) if line.split()[:1] == ["NAME"]), None)
    if header is None or "STATUS" not in lines[header]:
        return f"not listed (no NAME ... STATUS table: {out.strip()[:80]!r})"
    status_at, istiod_at = lines[header].index("STATUS"), lines[header].find("ISTIOD")
    rows = [line for line in lines[header + 1:] if line.split()[:1] == [remote]]
    if not rows:
        return "not listed (istiod has not read its remote secret yet)"
    states = [(row[status_at:istiod_at if istiod_at > 0 else None].strip() or "?",
               row[istiod_at:].strip() if istiod_at > 0 else "") for row in rows]
    pending = [f"{st} on {istiod}" if istiod else st for st, istiod in states if st != "synced"]
    return ", ".join(pending) if pending else "synced"


def check_remote_secret(path: Path) -> None:
    """Refuse an Istio remote secret whose kubeconfig server is a loopback address.

    See docs/troubleshooting.md#remote-secret-points-at-a-loopback-address.
    """
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc or doc.get("kind") != "Secret":
            continue
        data = dict(doc.get("stringData") or {})
        for k, v in (doc.get("data") or {}).items():
            data[k] = base64.b64decode(v).decode()
        for value in data.values():
            kubeconfig = yaml.safe_load(value) or {}
            for c in kubeconfig.get("clusters", []):
                server = c.get("cluster", {}).get("server", "")
                host = urlparse(server).hostname or ""
                if not host or is_loopback(host):
                    raise StepError(f"the remote secret's API server is {server or 'missing'}, which istiod in the "
                                    "other cluster cannot reach; pass --server with the control-plane address")
            return
    raise StepError(f"{path.name}: istioctl create-remote-secret printed no Secret")
