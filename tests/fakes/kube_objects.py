"""Builders for Kubernetes API objects, Status errors and selectors, in the real wire shapes.

Shapes follow what kube-apiserver sends and what the official `kubernetes` Python client
(pydantic models, extra fields forbidden) deserializes. Error texts follow
k8s.io/apimachinery/pkg/api/errors and the handlers cited next to each builder.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shlex
import time
import uuid
from dataclasses import dataclass
from typing import Any

# -- time and ids ---------------------------------------------------------------------


def rfc3339(ts: float | None = None) -> str:
    """A metav1.Time as the API server writes it: UTC, second precision, `Z`."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


def new_uid() -> str:
    return str(uuid.uuid4())


def hex_id(seed: str) -> str:
    """A stable 64-hex id (container ids, image digests) derived from a seed."""
    return hashlib.sha256(seed.encode()).hexdigest()


GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery util/rand alphanums


def generated_name(prefix: str) -> str:
    return prefix + "".join(secrets.choice(GENERATE_NAME_ALPHABET) for _ in range(5))


# -- wire encoding --------------------------------------------------------------------


def encode(obj: Any) -> bytes:
    """Compact JSON plus newline, with Go's HTML escaping, as the apiserver's serializer writes it."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (text + "\n").encode()


# -- Status errors (k8s.io/apimachinery/pkg/api/errors) -------------------------------


def status(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    """A metav1.Status failure body; `details` is kept only when the Go constructor sets it."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = {k: v for k, v in details.items() if v not in ("", None, [])}
    body["code"] = code
    return body


def qualified(resource: str, group: str = "") -> str:
    """schema.GroupResource.String(): `pods`, `servicemonitors.monitoring.coreos.com`."""
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> dict:
    return status(404, "NotFound", f'{qualified(resource, group)} "{name}" not found',
                  {"name": name, "group": group, "kind": resource})


def already_exists(resource: str, name: str, group: str = "", being_deleted: bool = False) -> dict:
    message = f'{qualified(resource, group)} "{name}" already exists'
    if being_deleted:  # generic registry Store.Create prefixes this when the old object has a deletionTimestamp
        message = f"object is being deleted: {message}"
    return status(409, "AlreadyExists", message, {"name": name, "group": group, "kind": resource})


def forbidden(resource: str, name: str, cause: str, group: str = "", causes: list | None = None) -> dict:
    if not resource:
        message = f"forbidden: {cause}"
    elif not name:
        message = f"{qualified(resource, group)} is forbidden: {cause}"
    else:
        message = f'{qualified(resource, group)} "{name}" is forbidden: {cause}'
    return status(403, "Forbidden", message,
                  {"name": name, "group": group, "kind": resource, "causes": causes or []})


def conflict(resource: str, name: str, cause: str, group: str = "") -> dict:
    return status(409, "Conflict", f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {cause}',
                  {"name": name, "group": group, "kind": resource})


def invalid(kind: str, name: str, field: str, detail: str, cause_type: str = "FieldValueInvalid") -> dict:
    """422 Invalid with one field error, like NewInvalid(GroupKind, name, ErrorList)."""
    return status(422, "Invalid", f'{kind} "{name}" is invalid: {field}: {detail}',
                  {"name": name, "kind": kind, "causes": [{"reason": cause_type, "message": detail, "field": field}]})


def bad_request(message: str) -> dict:
    return status(400, "BadRequest", message)


def service_unavailable(message: str) -> dict:
    return status(503, "ServiceUnavailable", message)


def unauthorized() -> dict:
    return status(401, "Unauthorized", "Unauthorized")


def method_not_allowed() -> dict:
    return status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
                  {})


# -- names ----------------------------------------------------------------------------

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
             "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


def name_error(name: str, label: bool) -> str | None:
    """The validation detail for a bad metadata.name, or None when it is valid."""
    pattern, message, limit = (DNS1123_LABEL, LABEL_MSG, 63) if label else (DNS1123_SUBDOMAIN, SUBDOMAIN_MSG, 253)
    if len(name) <= limit and pattern.fullmatch(name):
        return None
    return f'Invalid value: "{name}": {message}'


# -- metadata and lists ---------------------------------------------------------------


def meta(name: str, namespace: str | None, rv: int, labels: dict | None = None,
         annotations: dict | None = None, created: float | None = None) -> dict:
    m: dict[str, Any] = {"name": name}
    if namespace:
        m["namespace"] = namespace
    m.update({"uid": new_uid(), "resourceVersion": str(rv), "creationTimestamp": rfc3339(created)})
    if labels:
        m["labels"] = dict(labels)
    if annotations:
        m["annotations"] = dict(annotations)
    return m


def list_of(kind: str, api_version: str, items: list[dict], rv: int, core: bool,
            continue_token: str = "", remaining: int | None = None) -> dict:
    """A list; typed (core) lists drop each item's kind/apiVersion, unstructured (CRD) lists keep them."""
    if core:
        items = [{k: v for k, v in item.items() if k not in ("kind", "apiVersion")} for item in items]
    list_meta: dict[str, Any] = {"resourceVersion": str(rv)}
    if continue_token:
        list_meta["continue"] = continue_token
        if remaining is not None:
            list_meta["remainingItemCount"] = remaining
    return {"kind": kind, "apiVersion": api_version, "metadata": list_meta, "items": items}


# -- objects --------------------------------------------------------------------------


def namespace_obj(name: str, rv: int, labels: dict | None = None) -> dict:
    all_labels = {"kubernetes.io/metadata.name": name, **(labels or {})}
    return {"kind": "Namespace", "apiVersion": "v1", "metadata": meta(name, None, rv, all_labels),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def secret_obj(namespace: str, name: str, data: dict[str, str | bytes], rv: int, type_: str = "Opaque",
               labels: dict | None = None, annotations: dict | None = None) -> dict:
    encoded = {k: base64.b64encode(v.encode() if isinstance(v, str) else v).decode() for k, v in data.items()}
    return {"kind": "Secret", "apiVersion": "v1", "metadata": meta(name, namespace, rv, labels, annotations),
            "data": encoded, "type": type_}


def service_obj(namespace: str, name: str, ports: list[dict], rv: int, cluster_ip: str,
                labels: dict | None = None, selector: dict | None = None) -> dict:
    spec_ports = []
    for p in ports:
        port = {"name": p["name"], "protocol": "TCP", "port": p["port"], "targetPort": p.get("targetPort", p["port"])}
        if not p["name"]:
            del port["name"]
        spec_ports.append(port)
    spec: dict[str, Any] = {"ports": spec_ports}
    if selector:
        spec["selector"] = dict(selector)
    spec.update({"clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "type": "ClusterIP",
                 "sessionAffinity": "None", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                 "internalTrafficPolicy": "Cluster"})
    return {"kind": "Service", "apiVersion": "v1", "metadata": meta(name, namespace, rv, labels),
            "spec": spec, "status": {"loadBalancer": {}}}


def node_obj(name: str, rv: int, internal_ip: str, kubelet_version: str) -> dict:
    now = rfc3339()
    labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
              "node-role.kubernetes.io/control-plane": ""}
    conditions = [{"type": t, "status": "False", "lastHeartbeatTime": now, "lastTransitionTime": now,
                   "reason": r, "message": m} for t, r, m in (
        ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))]
    conditions.append({"type": "Ready", "status": "True", "lastHeartbeatTime": now, "lastTransitionTime": now,
                       "reason": "KubeletReady", "message": "kubelet is posting ready status"})
    node_info = {"machineID": hex_id(name)[:32], "systemUUID": new_uid(), "bootID": new_uid(),
                 "kernelVersion": "6.8.0-generic", "osImage": "Debian GNU/Linux 12 (bookworm)",
                 "containerRuntimeVersion": "containerd://2.1.1", "kubeletVersion": kubelet_version,
                 "kubeProxyVersion": kubelet_version, "operatingSystem": "linux", "architecture": "amd64"}
    return {"kind": "Node", "apiVersion": "v1", "metadata": meta(name, None, rv, labels),
            "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"], "providerID": f"kind://docker/kind/{name}"},
            "status": {"capacity": {"cpu": "8", "memory": "16318540Ki", "pods": "110"},
                       "allocatable": {"cpu": "8", "memory": "16318540Ki", "pods": "110"},
                       "conditions": conditions,
                       "addresses": [{"type": "InternalIP", "address": internal_ip}, {"type": "Hostname", "address": name}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}, "nodeInfo": node_info}}


_last_event_ns = 0


def _event_suffix() -> str:
    """The recorder names events `<object>.<UnixNano in hex>`, so they list in time order."""
    global _last_event_ns
    _last_event_ns = max(time.time_ns(), _last_event_ns + 1)
    return format(_last_event_ns, "x")


def event_obj(namespace: str, involved: dict, reason: str, message: str, rv: int, type_: str = "Normal",
              count: int = 1, component: str = "kubelet", host: str = "", first: float | None = None,
              last: float | None = None) -> dict:
    name = f"{involved.get('name', 'object')}.{_event_suffix()}"
    source = {"component": component}
    if host:
        source["host"] = host
    return {"kind": "Event", "apiVersion": "v1", "metadata": meta(name, namespace, rv),
            "involvedObject": involved, "reason": reason, "message": message, "source": source,
            "firstTimestamp": rfc3339(first), "lastTimestamp": rfc3339(last), "count": count, "type": type_,
            "eventTime": None, "reportingComponent": component, "reportingInstance": host}


def involved_ref(obj: dict, field_path: str = "") -> dict:
    m = obj["metadata"]
    ref = {"kind": obj["kind"], "namespace": m.get("namespace", ""), "name": m["name"], "uid": m["uid"],
           "apiVersion": obj["apiVersion"], "resourceVersion": m["resourceVersion"]}
    if field_path:
        ref["fieldPath"] = field_path
    return {k: v for k, v in ref.items() if v}


# -- pods -----------------------------------------------------------------------------


def normalized_image(image: str) -> str:
    """The image name as containerd reports it: docker.io/library/busybox:latest."""
    first, _, rest = image.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        image = f"docker.io/{image}" if rest else f"docker.io/library/{image}"
    last = image.rsplit("/", 1)[-1]
    if "@" not in image and ":" not in last:
        image += ":latest"
    return image


def pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    return "Always" if ":" not in last or last.endswith(":latest") else "IfNotPresent"


def default_pod(pod: dict) -> dict:
    """Apply the defaults the API server fills in on create (the subset the suite reads)."""
    spec = pod.setdefault("spec", {})
    for c in spec.get("containers", []):
        c.setdefault("resources", {})
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("imagePullPolicy", pull_policy(c.get("image", "")))
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("tolerations", [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}])
    spec.setdefault("priority", 0)
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    return pod


def _condition(type_: str, ok: bool, ts: str, reason: str = "", message: str = "") -> dict:
    c: dict[str, Any] = {"type": type_, "status": "True" if ok else "False", "lastProbeTime": None,
                         "lastTransitionTime": ts}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def _container_status(pod: dict, c: dict, state: dict, ready: bool, restarts: int = 0,
                      last_state: dict | None = None, running: bool = False) -> dict:
    image = normalized_image(c.get("image", ""))
    cs: dict[str, Any] = {"name": c["name"], "state": state, "lastState": last_state or {}, "ready": ready,
                          "restartCount": restarts, "image": image,
                          "imageID": "", "started": running}
    if "waiting" not in state or last_state:
        cs["imageID"] = image.rsplit(":", 1)[0] + "@sha256:" + hex_id(image)
        cs["containerID"] = "containerd://" + hex_id(pod["metadata"]["uid"] + c["name"] + str(restarts))
    return cs


def pod_status(pod: dict, phase: str, *, host_ip: str, pod_ip: str, started: float | None,
               waiting_reason: str = "ContainerCreating", waiting_message: str = "",
               exit_code: int = 0, finished: float | None = None) -> dict:
    """status for a pod in one of: Pending (waiting), Running, Succeeded/Failed (terminated)."""
    spec_containers = pod["spec"]["containers"]
    names = "[" + " ".join(c["name"] for c in spec_containers) + "]"
    ts = rfc3339(finished or started)
    created = pod["metadata"]["creationTimestamp"]
    st: dict[str, Any] = {"phase": phase}
    if phase == "Pending":
        st["conditions"] = [
            _condition("PodReadyToStartContainers", False, created), _condition("Initialized", True, created),
            _condition("Ready", False, created, "ContainersNotReady", f"containers with unready status: {names}"),
            _condition("ContainersReady", False, created, "ContainersNotReady", f"containers with unready status: {names}"),
            _condition("PodScheduled", True, created)]
        waiting = {"reason": waiting_reason}
        if waiting_message:
            waiting["message"] = waiting_message
        statuses = [_container_status(pod, c, {"waiting": waiting}, False) for c in spec_containers]
    elif phase == "Running":
        st["conditions"] = [_condition(t, True, ts if t in ("Ready", "ContainersReady") else created)
                            for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady",
                                      "PodScheduled")]
        statuses = [_container_status(pod, c, {"running": {"startedAt": rfc3339(started)}}, True, running=True)
                    for c in spec_containers]
    else:
        reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
        st["conditions"] = [_condition("PodReadyToStartContainers", False, ts), _condition("Initialized", True, created),
                            _condition("Ready", False, ts, reason), _condition("ContainersReady", False, ts, reason),
                            _condition("PodScheduled", True, created)]
        term = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                "startedAt": rfc3339(started), "finishedAt": rfc3339(finished)}
        statuses = []
        for c in spec_containers:
            cs = _container_status(pod, c, {"terminated": term}, False)
            term_with_id = dict(term, containerID=cs["containerID"])
            cs["state"] = {"terminated": term_with_id}
            statuses.append(cs)
    st.update({"hostIP": host_ip, "hostIPs": [{"ip": host_ip}]})
    if phase != "Pending":
        st.update({"podIP": pod_ip, "podIPs": [{"ip": pod_ip}]})
    st["startTime"] = created
    st["containerStatuses"] = statuses
    st["qosClass"] = "BestEffort"
    return st


def crashloop_status(pod: dict, *, host_ip: str, pod_ip: str, restarts: int, exit_code: int = 1) -> dict:
    """A Running pod whose containers are in CrashLoopBackOff with lastState.terminated."""
    st = pod_status(pod, "Running", host_ip=host_ip, pod_ip=pod_ip, started=time.time() - 60)
    names = "[" + " ".join(c["name"] for c in pod["spec"]["containers"]) + "]"
    for cond in st["conditions"]:
        if cond["type"] in ("Ready", "ContainersReady"):
            cond.update(status="False", reason="ContainersNotReady", message=f"containers with unready status: {names}")
    m = pod["metadata"]
    statuses = []
    for c in pod["spec"]["containers"]:
        last = {"terminated": {"exitCode": exit_code, "reason": "Error", "startedAt": rfc3339(time.time() - 40),
                               "finishedAt": rfc3339(time.time() - 30),
                               "containerID": "containerd://" + hex_id(m["uid"] + c["name"] + str(restarts - 1))}}
        waiting = {"reason": "CrashLoopBackOff",
                   "message": f"back-off 5m0s restarting failed container={c['name']} pod={m['name']}_{m['namespace']}({m['uid']})"}
        statuses.append(_container_status(pod, c, {"waiting": waiting}, False, restarts, last))
    st["containerStatuses"] = statuses
    return st


# -- container stdout from `sh -c` scripts -------------------------------------------

SHELLS = {"sh", "/bin/sh", "bash", "/bin/bash", "ash", "/bin/ash"}


def container_run(container: dict) -> tuple[list[str], int | None]:
    """What a container prints and its exit code (None when it does not exit by itself).

    Understands `echo` (with -n/-e dropped), `exit N`, `sleep` (never exits if `infinity` or >= 60 s),
    separated by `;`, `&&`, `||` or newlines, under `sh -c`, or a bare `echo` command. No variables,
    pipes, redirection targets, printf, loops or conditionals: such commands print nothing here.
    """
    argv = list(container.get("command") or []) + list(container.get("args") or [])
    if not argv:
        return [], None
    if argv[0] in SHELLS and "-c" in argv[1:-1]:
        script = argv[argv.index("-c", 1) + 1]
    else:
        script = shlex.join(argv)
    lines: list[str] = []
    for raw_line in script.splitlines():
        lexer = shlex.shlex(raw_line, posix=True, punctuation_chars=";&|<>")
        lexer.whitespace_split = True
        command: list[str] = []
        for token in list(lexer) + [";"]:
            if token in (";", "&&", "||", "&", "|"):
                outcome = _run_one(command, lines)
                if outcome is not None:
                    return lines, (None if outcome < 0 else outcome)
                command = []
            else:
                command.append(token)
    return lines, 0


def _run_one(command: list[str], lines: list[str]) -> int | None:
    """Run one simple command of the mini shell; an int means the script exits with it."""
    if not command:
        return None
    if any(t.startswith((">", "<")) for t in command):
        return None  # redirected: nothing reaches stdout
    name, args = command[0].rsplit("/", 1)[-1], command[1:]
    if name == "echo":
        while args and args[0] in ("-n", "-e", "-ne", "-en"):
            args = args[1:]
        lines.append(" ".join(args))
    elif name == "exit":
        return int(args[0]) if args and args[0].isdigit() else 0
    elif name == "sleep" and args and (args[0] == "infinity" or args[0].isdigit() and int(args[0]) >= 60):
        return -1  # a long sleep outlives any test: the container keeps running
    return None


# -- selectors ------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present, value = self.key in labels, labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values  # "!=" and "notin" match absent keys


def _split_top(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


SET_REQ = re.compile(r"(?P<key>[^\s!=()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^)]*)\)")


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse a label selector; raise ValueError with the API server's wording when it is bad."""
    reqs = []
    for part in _split_top(text or ""):
        m = SET_REQ.fullmatch(part)
        if m:
            values = tuple(v.strip() for v in m["values"].split(",") if v.strip())
            reqs.append(Requirement(m["key"], m["op"], values))
        elif "!=" in part:
            k, v = part.split("!=", 1)
            reqs.append(Requirement(k.strip(), "!=", (v.strip(),)))
        elif "=" in part:
            k, v = part.replace("==", "=", 1).split("=", 1)
            reqs.append(Requirement(k.strip(), "=", (v.strip(),)))
        elif part.startswith("!"):
            reqs.append(Requirement(part[1:].strip(), "!exists"))
        elif re.fullmatch(r"[A-Za-z0-9._/-]+", part):
            reqs.append(Requirement(part, "exists"))
        else:
            raise ValueError(f"unable to parse requirement: {part}")
    return reqs


def parse_field_selector(text: str) -> list[tuple[str, str, str]]:
    """`a=b,c!=d` into (field, op, value) triples; op is `=` or `!=`."""
    out = []
    for part in _split_top(text or ""):
        if "!=" in part:
            k, v = part.split("!=", 1)
            out.append((k.strip(), "!=", v.strip()))
        elif "=" in part:
            k, v = part.replace("==", "=", 1).split("=", 1)
            out.append((k.strip(), "=", v.strip()))
        else:
            raise ValueError(f"invalid selector: '{text}'; can't understand '{part}'")
    return out


def field_value(obj: dict, path: str) -> str:
    """The string value at a dotted path (`status.phase`), empty when absent."""
    cur: Any = obj
    for key in path.split("."):
        cur = cur.get(key) if isinstance(cur, dict) else None
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return "" if cur is None else str(cur)


# -- apps/v1 Deployments and the autoscaling/v1 Scale subresource -----------------------


def pod_template_hash(deployment_uid: str) -> str:
    """A ReplicaSet's pod-template-hash: 10 characters of the safe alphabet (rand.SafeEncodeString)."""
    digest = hex_id(deployment_uid)
    return "".join(GENERATE_NAME_ALPHABET[int(digest[i:i + 2], 16) % len(GENERATE_NAME_ALPHABET)] for i in range(0, 20, 2))


def deployment_obj(namespace: str, name: str, replicas: int, labels: dict, rv: int, containers: list[dict]) -> dict:
    """A Deployment as `kubectl create deployment` leaves it, with the API server's defaults."""
    template_spec = default_pod({"spec": {"containers": containers}})["spec"]
    for key in ("serviceAccountName", "serviceAccount", "tolerations", "priority", "enableServiceLinks",
                "preemptionPolicy"):
        template_spec.pop(key, None)  # set by admission on pods, not defaulted in a pod template
    m = meta(name, namespace, rv, labels, {"deployment.kubernetes.io/revision": "1"})
    m["generation"] = 1
    return {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": m,
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"labels": dict(labels)}, "spec": template_spec},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                     "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
            "status": {}}


def deployment_status(deployment: dict, ready: int) -> dict:
    """status once the controller has observed the generation and `ready` pods are available (zeros omitted)."""
    m = deployment["metadata"]
    now = rfc3339()
    rs = f"{m['name']}-{pod_template_hash(m['uid'])}"
    counts = {k: ready for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas") if ready}
    conditions = [
        {"type": "Available", "status": "True", "lastUpdateTime": now, "lastTransitionTime": now,
         "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
        {"type": "Progressing", "status": "True", "lastUpdateTime": now, "lastTransitionTime": now,
         "reason": "NewReplicaSetAvailable", "message": f'ReplicaSet "{rs}" has successfully progressed.'}]
    return {"observedGeneration": m["generation"], **counts, "conditions": conditions}


def selector_string(match_labels: dict) -> str:
    """metav1.LabelSelectorAsSelector(...).String(): requirements sorted by key."""
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


def scale_obj(deployment: dict) -> dict:
    """autoscaling/v1 Scale of a Deployment (scaleFromDeployment); spec.replicas is omitempty."""
    m = deployment["metadata"]
    spec = {"replicas": deployment["spec"]["replicas"]} if deployment["spec"]["replicas"] else {}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
            "spec": spec,
            "status": {"replicas": deployment["status"].get("replicas", 0),
                       "selector": selector_string(deployment["spec"]["selector"]["matchLabels"])}}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (also strategic merge for objects without lists, like Scale)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict, operations: list) -> dict:
    """RFC 6902 add/replace/remove/test on object members (no move/copy, no array indices); ValueError when it does not apply."""
    doc = json.loads(json.dumps(target))
    for op in operations:
        if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove", "test"):
            raise ValueError(f"Unexpected kind: {op.get('op') if isinstance(op, dict) else op}")
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in str(op.get("path", "")).split("/")[1:]]
        node = doc
        for key in parents:
            if not isinstance(node, dict) or key not in node:
                raise ValueError(f"replace operation does not apply: doc is missing path: {op['path']}")
            node = node[key]
        if op["op"] != "add" and last not in node:
            raise ValueError(f"{op['op']} operation does not apply: doc is missing path: {op['path']}")
        if op["op"] == "test" and node[last] != op.get("value"):
            raise ValueError(f"testing value {op['path']} failed: test failed")
        if op["op"] == "remove":
            del node[last]
        elif op["op"] in ("add", "replace"):
            node[last] = op.get("value")
    return doc
