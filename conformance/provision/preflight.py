"""Host checks before anything is created, each bounded, all finished well within 30 seconds."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.error
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from conformance.provision.clusters import KindConfig

# Per-command bound; the checks run one after the other (the hosts the plan fetches from all at once),
# so the worst case is DOCKER_TIMEOUT * 2 + HTTP_TIMEOUT * 2, under the 30 seconds.
DOCKER_TIMEOUT = 8.0
HTTP_TIMEOUT = 5.0
# kind's known-issues page; Ubuntu's defaults (8192 / 128) are too low for
# Promtail on two clusters (docs/troubleshooting.md#too-many-open-files-inotify-limits; grafana/loki#1153).
INOTIFY_MIN = {"max_user_watches": 524288, "max_user_instances": 512}
# Two kind nodes with the whole stack; a guess from the charts' requests, not a measurement.
MIN_MEMORY_GIB = 6.0
MIN_DISK_GIB = 20.0
GRAFANA_COM = "https://grafana.com/api/dashboards/1860"
WAYS_FORWARD = ("start Docker (e.g. `sudo systemctl start docker` or Docker Desktop), or run the suites against "
                "clusters you already have: --topology FILE with provider existing or endpoints")


class PreflightFailed(Exception):
    """One or more checks failed; `problems` are one line each, saying what to do."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Host:
    """Where preflight looks; tests point these at fakes."""

    proc: Path = Path("/proc")
    grafana_url: str = GRAFANA_COM
    min_memory_gib: float = MIN_MEMORY_GIB
    min_disk_gib: float = MIN_DISK_GIB


def run(configs: dict[str, KindConfig], host: Host = Host(), offline: bool = False,
        needs: dict[str, list[str]] | None = None, may_need: dict[str, list[str]] | None = None) -> list[str]:
    """Raise PreflightFailed with every problem; return warnings (e.g. checks that could not be made).

    `needs`/`may_need`: probe URL -> what the plan fetches there; an unreachable one is a problem/a warning. The hosts
    are probed only once a Docker engine answers: without one nothing comes up, and that is the first line to read.
    """
    problems: list[str] = []
    warnings: list[str] = []
    info = docker_info(problems)  # first: without an engine nothing comes up, and that is the line to read first
    if info is not None:
        check_hosts(needs or {}, may_need or {}, problems, warnings)
        check_resources(info, host, problems, warnings)
        running = kind_clusters_running(warnings)
        check_ports({n: c for n, c in configs.items() if n not in running}, problems)
    check_inotify(host, problems, warnings)
    if not offline:
        check_grafana_com(host, problems)
    if problems:
        raise PreflightFailed(problems)
    return warnings


def docker_info(problems: list[str]) -> dict | None:
    """`docker info` as JSON, or None with the reason and the ways forward added to problems."""
    info, reason = query_docker()
    if reason:
        problems.append(f"{reason}; {WAYS_FORWARD}")
    return info


def query_docker() -> tuple[dict | None, str | None]:
    """(`docker info` as JSON, None), or (None, why no engine answered) in one line without advice."""
    if shutil.which("docker") is None:
        return None, "docker: command not found; install Docker (https://docs.docker.com/engine/install/)"
    try:
        proc = subprocess.run(["docker", "info", "--format", "{{json .}}"], capture_output=True, text=True,
                              timeout=DOCKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"Docker engine did not answer `docker info` within {DOCKER_TIMEOUT:.0f}s"
    try:
        info = json.loads(proc.stdout or "null")
    except ValueError:
        info = None
    # With no engine, docker prints the client part and a ServerErrors list (exit 1 on newer clients).
    errors = (info or {}).get("ServerErrors") or []
    if proc.returncode != 0 or not info or errors or not info.get("ServerVersion"):
        reason = (errors[0] if errors else proc.stderr.strip().splitlines()[-1:] or ["no answer"])
        reason = reason if isinstance(reason, str) else reason[0]
        return None, f"Docker engine not reachable ({reason.strip()[:160]})"
    return info, None


def check_resources(info: dict, host: Host, problems: list[str], warnings: list[str]) -> None:
    """Memory of the Docker engine (the VM on Docker Desktop) and disk under its root dir."""
    mem = int(info.get("MemTotal") or 0) / 2**30
    if mem and mem < host.min_memory_gib:
        problems.append(f"Docker has {mem:.1f} GiB of memory, the two clusters need about {host.min_memory_gib:.0f} GiB; "
                        "give Docker more memory (Docker Desktop: Settings > Resources) or close other containers")
    root = Path(info.get("DockerRootDir") or "/var/lib/docker")
    try:
        free = shutil.disk_usage(root).free / 2**30
    except OSError:
        warnings.append(f"disk space under {root} not checked (not visible from this host, e.g. Docker Desktop's VM)")
        return
    if free < host.min_disk_gib:
        problems.append(f"{free:.1f} GiB free under {root}, need about {host.min_disk_gib:.0f} GiB for node images "
                        "and stack images; free space (e.g. `docker system prune`)")


def kind_clusters_running(warnings: list[str]) -> set[str]:
    """Names of kind clusters whose node containers run (their ports are theirs, not a conflict)."""
    try:
        proc = subprocess.run(["docker", "ps", "--filter", "label=io.x-k8s.kind.cluster",
                               "--format", '{{.Label "io.x-k8s.kind.cluster"}}'],
                              capture_output=True, text=True, timeout=DOCKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        warnings.append("could not list running kind clusters (docker ps timed out)")
        return set()
    return set(proc.stdout.split())


def check_ports(configs: dict[str, KindConfig], problems: list[str]) -> None:
    """Every host port a kind config maps must be free to bind (docs/troubleshooting.md#host-port-already-in-use)."""
    for name, cfg in configs.items():
        for address, port in cfg.host_ports:
            if not port_free(address, port):
                problems.append(f"host port {address}:{port} (kind/{cfg.path.name}) is in use; stop what listens "
                                f"there (e.g. `ss -ltnp 'sport = :{port}'`) or change the port in {cfg.path}")


def port_free(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def check_inotify(host: Host, problems: list[str], warnings: list[str]) -> None:
    """Host-wide inotify limits, shared by every kind node (not namespaced)."""
    low = []
    for key, minimum in INOTIFY_MIN.items():
        path = host.proc / "sys" / "fs" / "inotify" / key
        try:
            value = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            warnings.append(f"{path} not readable; if Promtail logs 'too many open files', raise fs.inotify.{key}")
            continue
        if value < minimum:
            low.append((key, value, minimum))
    if low:
        now = ", ".join(f"fs.inotify.{k}={v}" for k, v, _ in low)
        fix = " && ".join(f"sudo sysctl fs.inotify.{k}={m}" for k, _, m in low)
        problems.append(f"inotify limits too low for Promtail on two clusters ({now}); run: {fix} "
                        "(add them to /etc/sysctl.d/ to keep them)")


def check_grafana_com(host: Host, problems: list[str]) -> None:
    """Grafana's init container downloads dashboards by id; without grafana.com its pod never starts."""
    try:
        req = urllib.request.Request(host.grafana_url, method="HEAD")
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT):
            return
    except urllib.error.HTTPError:
        return  # it answered: reachable
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        problems.append(f"cannot reach {host.grafana_url} ({getattr(e, 'reason', e)}): Grafana downloads its dashboards "
                        "from grafana.com and would never start; pass --offline DIR with the dashboards as <key>.json files")


def check_hosts(needs: dict[str, list[str]], may_need: dict[str, list[str]], problems: list[str],
                warnings: list[str]) -> None:
    """Probe every URL at once (HTTP_TIMEOUT in all); a host that does not answer is one line in problems
    (the plan needs it) or warnings (it needs it only in some cases)."""
    urls = list(dict.fromkeys([*needs, *may_need]))
    if not urls:
        return
    with ThreadPoolExecutor(max_workers=min(32, len(urls))) as pool:
        answers = dict(zip(urls, pool.map(lambda url: probe(url), urls)))
    for url, why in answers.items():
        if why is not None:
            what = needs.get(url, []) + may_need.get(url, [])
            (problems if url in needs else warnings).append(_unreachable(url, why, what))


def _unreachable(url: str, why: str, what: list[str]) -> str:
    more = f" and {len(what) - 2} more" if len(what) > 2 else ""
    return (f"cannot reach {urllib.parse.urlparse(url).hostname} ({why}), needed for {'; '.join(what[:2])}{more}; "
            "allow it, or bring up with --offline DIR (charts, manifests, dashboards) and images in the "
            "local docker (docs/troubleshooting.md#offline-bring-up)")


def probe(url: str) -> str | None:
    """None when the URL's host answers HTTPS at all (any status), following redirects, else why not, in a few words;
    where a redirect led elsewhere (a release download to its CDN), the words name that host."""
    followed = _Redirects()
    try:
        with urllib.request.build_opener(followed).open(urllib.request.Request(url, method="HEAD"), timeout=HTTP_TIMEOUT):
            return None
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        why = str(getattr(e, "reason", e))[:120]
        return f"{why} at {followed.hosts[-1]}, where it redirects" if followed.hosts else why


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects as urllib does, remembering the hosts they lead to."""

    def __init__(self) -> None:
        self.hosts: list[str] = []

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 (urllib's signature)
        host = urllib.parse.urlparse(newurl).hostname
        if host and host != urllib.parse.urlparse(req.full_url).hostname:
            self.hosts.append(host)
        return super().redirect_request(req, fp, code, msg, headers, newurl)
