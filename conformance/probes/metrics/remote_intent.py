"""A remote's Prometheus resource against the topology: the label that tells its series apart (and its value), and
whether its remoteWrite URLs point at the primary's Prometheus. Each verdict names where it was read."""

from __future__ import annotations

import ipaddress
import socket
from typing import Callable
from urllib.parse import urlsplit

from conformance.core.http import ServiceError
from conformance.core.outcomes import PreconditionUnmet, Unobservable
from conformance.probes.metrics.prometheus_intent import PrometheusIntent, cluster_label, read_intent, remote_write_urls
from conformance.probes.metrics.series_label import series_label

Record = Callable[[str, object], None]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


INSIDE = " (cluster IP)"  # the mark of an address only the primary's own cluster reaches


def primary_addresses(access, primary) -> dict[str, str]:
    """Each host the primary's Prometheus answers at, and what it is: the topology's URL, its resource's externalUrl,
    the cluster, external and LoadBalancer addresses of the Services in front of its pods, the nodes' behind a NodePort."""
    out: dict[str, str] = {}
    override = primary.services.get("prometheus")
    if override is not None:
        out[urlsplit(override.url).hostname or ""] = "the topology's services.prometheus url"
    intent = read_intent(access, primary)
    if isinstance(intent, PrometheusIntent) and intent.spec.get("externalUrl"):
        out.setdefault(urlsplit(intent.spec["externalUrl"]).hostname or "", f"{intent.source} spec.externalUrl")
    try:
        kube, spec = access.kube(primary), access.located(primary, "prometheus").spec
        services = kube.call(f"list Services in {spec.namespace}", kube.core().list_namespaced_service,
                             spec.namespace, ok=(403,))
        for svc in (services.items if services else []):
            if svc.metadata.name != spec.service and (svc.spec.selector or {}).get("app.kubernetes.io/name") != "prometheus":
                continue
            what = f"Service {spec.namespace}/{svc.metadata.name}"
            for host in svc.spec.cluster_ips or [svc.spec.cluster_ip]:
                out.setdefault(str(host), what + INSIDE)
            for host in svc.spec.external_ips or []:
                out.setdefault(host, f"{what} (external IP)")
            for ing in (svc.status.load_balancer.ingress or []) if svc.status and svc.status.load_balancer else []:
                out.setdefault(ing.ip or ing.hostname or "", f"{what} (LoadBalancer)")
            if svc.spec.type in ("NodePort", "LoadBalancer"):
                nodes = kube.call("list nodes", kube.core().list_node, ok=(403,))
                for node in (nodes.items if nodes else []):
                    for a in node.status.addresses or []:
                        out.setdefault(a.address, f"node {node.metadata.name} ({what} is {svc.spec.type})")
    except (Unobservable, ServiceError):
        pass
    out.pop("", None)
    out.pop("None", None)
    return out


def judge_url(url: str, addresses: dict[str, str]) -> tuple[bool | None, str]:
    """(True: at the primary, False: certainly elsewhere, None: cannot tell) and what it is. Nothing the configuration
    shows proves a URL misses the primary: an address of none of the primary's may be a gateway's or an ingress's
    with its own address, a loopback one a local proxy in the sender's pod (sigv4, OAuth) that forwards to it."""
    host = urlsplit(url).hostname or ""
    if host in addresses:
        return True, addresses[host]
    if _is_ip(host):
        if ipaddress.ip_address(host).is_loopback:
            return None, f"{host} is in the sender's own pod: a local proxy may forward it"
        return None, f"{host} is an address of none of them: a gateway or an ingress of its own may carry it"
    if "." not in host or host.endswith((".svc", ".svc.cluster.local")):
        return None, f"{host} is a cluster-local name, resolved in the sender's own cluster"
    try:
        resolved = {a[4][0] for a in socket.getaddrinfo(host, None)}
    except OSError:
        return None, f"{host} does not resolve here"
    hit = next((addresses[a] for a in resolved if a in addresses), None)
    return (True, hit) if hit else (None, f"{host} resolves here to {', '.join(sorted(resolved))}, none of them")


def require_remote_intent(access, remote, primary, hop: str, record: Record) -> str:
    """The label the primary tells the remote's series apart by; PreconditionUnmet at once when the remote's resource
    labels them otherwise than the topology names it, sends nowhere, or sends elsewhere than the primary.
    The label looked for first is the one the primary's own resource names its cluster by (`cluster` where that
    cannot be read). Where the remote's resource cannot be read, say so (a JUnit property) and return that label."""
    stack = series_label(access, primary)
    intent = read_intent(access, remote)
    if isinstance(intent, str):
        record("remote_intent", f"not judged: {intent}")
        record("cluster_label", f"{stack.name}={remote.name} (the label {primary.name} names itself by: {stack.where})")
        return stack.name
    try:
        label, where = cluster_label(intent, remote.name, stack.name)
    except ValueError as e:
        raise PreconditionUnmet(hop, str(e), f"the primary finds a remote's series by this external label, the one "
                                f"it names itself by: {stack} "
                                "(docs/troubleshooting.md#cluster-external-label-missing-or-wrong)") from None
    record("cluster_label", f"{label}={remote.name} ({where})")
    urls = remote_write_urls(intent)
    if not urls:
        raise PreconditionUnmet(hop, f"{intent.source} has no spec.remoteWrite: its series are sent nowhere")
    addresses = primary_addresses(access, primary)
    if not addresses:
        record("remote_write_target", f"not judged: no address of the {primary.name} Prometheus is known here")
        return label
    verdicts = [(url, *judge_url(url, addresses)) for url in urls]
    record("remote_write_target", "; ".join(f"{u}: {what}" for u, _, what in verdicts))
    if all(ok is False for _, ok, _ in verdicts):
        known = ", ".join(f"{h} ({w})" for h, w in sorted(addresses.items()))
        raise PreconditionUnmet(hop, f"{intent.source} spec.remoteWrite sends to {', '.join(urls)}, not to the "
                                f"{primary.name} Prometheus ({verdicts[0][2]})",
                                f"the {primary.name} Prometheus answers at: {known}")
    return label
