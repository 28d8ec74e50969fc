"""Fixtures for the bring-up's self-tests: fake tools on PATH, a fake /proc, a loopback HTTP server."""

from __future__ import annotations

import io
import json
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conformance.provision import cli, preflight

FAKE = Path(__file__).with_name("fakebin.py")
TOOLS = ("docker", "kind", "kubectl", "helm", "istioctl")
TOPOLOGY = Path(__file__).resolve().parents[2] / "kind" / "topology.yaml"


@dataclass
class FakeBin:
    """The fake tools' folder: what they were asked, and what they should answer."""

    dir: Path

    def calls(self) -> list[dict]:
        log = self.dir / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []

    def commands(self) -> list[str]:
        """Each call as one string, "tool arg arg ..."."""
        return [" ".join([c["tool"], *c["argv"]]) for c in self.calls()]

    def scenario(self, *rules: dict) -> None:
        (self.dir / "scenario.json").write_text(json.dumps(list(rules)))

    def existing_clusters(self, *names: str) -> None:
        (self.dir / "clusters.json").write_text(json.dumps(list(names)))

    def clear_log(self) -> None:
        (self.dir / "calls.jsonl").unlink(missing_ok=True)


@pytest.fixture
def fakebin(tmp_path, monkeypatch) -> FakeBin:
    """docker, kind, kubectl, helm and istioctl fakes, and nothing else, on PATH."""
    return install_fakes(tmp_path / "bin", monkeypatch)


def install_fakes(bin_dir: Path, monkeypatch) -> FakeBin:
    bin_dir.mkdir()
    source = FAKE.read_text()
    for tool in TOOLS:
        exe = bin_dir / tool
        exe.write_text(f"#!{sys.executable} -S\n{source}")  # -S: no site, faster start
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return FakeBin(bin_dir)


@pytest.fixture
def fake_proc(tmp_path) -> Path:
    """A /proc with inotify limits high enough for two clusters (kind's known-issues values)."""
    return make_proc(tmp_path / "proc")


def make_proc(root: Path) -> Path:
    inotify = root / "sys" / "fs" / "inotify"
    inotify.mkdir(parents=True)
    (inotify / "max_user_watches").write_text("524288\n")
    (inotify / "max_user_instances").write_text("512\n")
    return root


class Routes(dict):
    """path -> (status, body bytes, declared length or None)."""


@pytest.fixture
def http_server():
    """A loopback HTTP server; tests add routes. Yields (base_url, routes)."""
    yield from serve()


def serve():
    routes = Routes()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self, body_too: bool) -> None:
            status, body, declared = routes.get(self.path, (404, b"not found", None))
            self.send_response(status)
            self.send_header("Content-Length", str(declared if declared is not None else len(body)))
            self.end_headers()
            if body_too:
                self.wfile.write(body)
            if declared is not None:
                self.close_connection = True  # a download cut short

        def do_GET(self):  # noqa: N802 - http.server's naming
            self._serve(True)

        def do_HEAD(self):  # noqa: N802
            self._serve(False)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", routes
    server.shutdown()
    server.server_close()
    thread.join()


@dataclass
class Provision:
    """Runs `python -m conformance.provision` in-process against the fakes."""

    tmp: Path
    proc: Path
    grafana_url: str

    @property
    def cache(self) -> Path:
        return self.tmp / "cache"

    @property
    def reports(self) -> Path:
        return self.tmp / "reports"

    @property
    def junit(self) -> Path:
        return self.reports / "junit.xml"

    def __call__(self, command: str, *extra: str, topology: Path = TOPOLOGY) -> tuple[int, str]:
        out = io.StringIO()
        code = cli.main([command, "--topology", str(topology), "--cache-dir", str(self.cache),
                         "--reports", str(self.reports), "--junit", str(self.junit), "--proc", str(self.proc),
                         "--grafana-url", self.grafana_url, *extra], out=out)
        return code, out.getvalue()


class Probes(list):
    """Stands in for preflight.probe: records each URL; hosts in `down` do not answer."""

    def __init__(self) -> None:
        super().__init__()
        self.down: set[str] = set()

    def __call__(self, url: str) -> str | None:
        self.append(url)
        return "Name or service not known" if any(h in url for h in self.down) else None


@pytest.fixture
def probes(monkeypatch) -> Probes:
    """The preflight's host probes, answered here: no self-test reaches the internet."""
    fake = Probes()
    monkeypatch.setattr(preflight, "probe", fake)
    return fake


@pytest.fixture
def provision(tmp_path, fakebin, fake_proc, http_server, probes) -> Provision:
    base, routes = http_server
    routes["/api/dashboards/1860"] = (200, b"{}", None)
    return Provision(tmp_path, fake_proc, f"{base}/api/dashboards/1860")


@dataclass
class HappyRun:
    """One successful `up` against the fakes, shared by the tests that only read its results."""

    code: int
    out: str
    provision: Provision
    fakebin: FakeBin


@pytest.fixture(scope="module")
def happy_up(tmp_path_factory) -> HappyRun:
    """`up` once per module: the order and shape tests read the same call log."""
    tmp = tmp_path_factory.mktemp("happy")
    with pytest.MonkeyPatch.context() as mp:
        fakes = install_fakes(tmp / "bin", mp)
        mp.setattr(preflight, "probe", Probes())
        for base, routes in serve():
            routes["/api/dashboards/1860"] = (200, b"{}", None)
            run = Provision(tmp, make_proc(tmp / "proc"), f"{base}/api/dashboards/1860")
            code, out = run("up")
    return HappyRun(code, out, run, fakes)


@pytest.fixture
def already_up(provision, fakebin, happy_up) -> Provision:
    """The state a successful `up` leaves (clusters, markers, kubeconfigs), copied from the shared run."""
    import shutil
    shutil.copytree(happy_up.provision.cache, provision.cache)
    shutil.copy(happy_up.fakebin.dir / "clusters.json", fakebin.dir / "clusters.json")
    return provision


def make_offline_dir(folder: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """A complete --offline folder: every declared dashboard, every pinned chart as `helm pull` saves it
    (<name>-<version>.tgz holding <name>/Chart.yaml), and Istio's Jaeger addon; `leave_out` names files to omit."""
    import io
    import tarfile

    from conformance.probes.dashboards.declared import declared
    from conformance.core.versions import load_versions

    (folder / "charts").mkdir(parents=True)
    (folder / "manifests").mkdir()
    for d in declared():
        (folder / f"{d.key}.json").write_text(json.dumps({"title": d.key, "uid": f"uid-{d.key}", "panels": [{}]}))
    v = load_versions()
    for chart in (v.metallb, *v.charts.values()):
        archive = folder / "charts" / f"{chart.name}-{chart.version}.tgz"
        if archive.name in leave_out:
            continue
        meta = f"apiVersion: v2\nname: {chart.name}\nversion: {chart.version}\n".encode()
        with tarfile.open(archive, "w:gz") as tar:
            info = tarfile.TarInfo(f"{chart.name}/Chart.yaml")
            info.size = len(meta)
            tar.addfile(info, io.BytesIO(meta))
    if "jaeger.yaml" not in leave_out:
        (folder / "manifests" / "jaeger.yaml").write_text("apiVersion: v1\nkind: List\nitems: []\n")
    return folder
