"""FakeGrafana: Grafana 11/12 HTTP API with basic auth, provisioned dashboards and datasources.

Shapes follow grafana/grafana pkg/api (dtos.DashboardMeta, search model.Hit, dtos.DataSourceListItem),
pkg/api/datasources.go checkDatasourceHealth (ERROR -> HTTP 400), pkg/tsdb/loki/healthcheck.go and
pkg/promlib/healthcheck.go. Health checks and /api/ds/query really query the datasource's backing URL
(loopback only), so a FakeLoki(version="2.6.1") reproduces docs/troubleshooting.md#loki-stack-runs-an-old-loki
end to end.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tests.fakes.server import FakeServer, Request, Response

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SESSION_COOKIE = "grafana_session"  # pkg/services/auth: login_cookie_name default
UNAUTHORIZED = {"message": "Unauthorized", "messageId": "auth.unauthorized", "statusCode": 401, "traceID": ""}
# pkg/services/authn/error.go errTokenNeedsRotation, rendered by errutil's PublicError (no public message).
TOKEN_ROTATE = {"message": "Unauthorized", "messageId": "session.token.rotate", "statusCode": 401, "traceID": ""}
BAD_PASSWORD = {"message": "Invalid username or password", "messageId": "password-auth.failed",
                "statusCode": 401, "traceID": ""}
TWO_DEFAULTS = ("Datasource provisioning error: datasource.yaml config is invalid. "
                "Only one datasource per organization can be marked as default")
TYPE_NAMES = {"prometheus": "Prometheus", "loki": "Loki"}
LOGOS = {"prometheus": "public/app/plugins/datasource/prometheus/img/prometheus_logo.svg",
         "loki": "public/app/plugins/datasource/loki/img/loki_icon.svg"}
EPOCH = "0001-01-01T00:00:00Z"


def slugify(title: str) -> str:
    """Grafana's slug: lower case, runs of other characters become one dash."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def logfmt_value(value: object) -> str:
    text = str(value)
    return json.dumps(text) if (text == "" or re.search(r'[\s"=]', text)) else text


@dataclass
class Datasource:
    """A provisioned datasource; `backend_url` is where the fake really sends queries (defaults to `url`)."""

    uid: str
    name: str
    type: str
    url: str
    is_default: bool = False
    backend_url: str | None = None
    json_data: dict[str, Any] = field(default_factory=dict)
    read_only: bool = True  # provisioned datasources are read-only
    id: int = 0


@dataclass
class Dashboard:
    uid: str
    title: str
    folder: str | None = None  # folder title; None = General
    provisioned: bool = True
    panels: list[dict[str, Any]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    file: str = ""  # provisioning file (provisionedExternalId); defaults to <uid>.json
    wrapped: bool = False  # file wraps the JSON in {"dashboard": {...}}: docs/troubleshooting.md#dashboard-title-cannot-be-empty
    invalid_json: str = ""  # the file is not JSON: Grafana's decoder error (e.g. an HTML error page downloaded)
    provider: str = "default"
    id: int = 0
    body: dict[str, Any] | None = None  # the JSON a file provider read; served as the dashboard when set


@dataclass
class FileProvider:
    """A `type: file` dashboard provider (provisioning/dashboards/*.yaml), as the grafana chart's sidecarProvider."""

    name: str
    path: Path
    folder: str = ""  # '' = General
    folders_from_files_structure: bool = False
    disable_deletion: bool = False
    update_interval: float = 30.0  # updateIntervalSeconds (the chart's default 30)


class FakeGrafana(FakeServer):
    """Grafana on loopback; configure with dashboards() / datasources() specs before or after start()."""

    def __init__(self, admin_user: str = "admin", admin_password: str = "admin", version: str = "11.4.0",
                 log_path: str | Path | None = None,
                 dashboards: list[dict[str, Any]] | None = None,
                 datasources: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.admin_user, self.admin_password, self.version = admin_user, admin_password, version
        self.log_path = Path(log_path) if log_path else None
        self.log_lines: list[str] = []
        self._log_lock = threading.Lock()
        self._datasources: list[Datasource] = []
        self._dashboards: dict[str, Dashboard] = {}
        self._folders: dict[str, dict[str, Any]] = {}  # title -> {id, uid, title}
        self._rejected: list[Dashboard] = []
        self._sessions: set[str] = set()  # session cookies handed out by POST /login
        self._pass_lines: list[tuple] = []  # what the next provisioning pass logs (Grafana logs inside the pass)
        self._started = False
        self._providers: list[FileProvider] = []
        self._walk_lock = threading.RLock()
        self._poller: threading.Thread | None = None
        self._stopping = threading.Event()
        self.reloads = 0  # POST /api/admin/provisioning/dashboards/reload answered
        self.startup_race = False  # start(): a first pass fails on a half-written file, the sidecar's reload heals it
        # Fault switches -------------------------------------------------------
        # Both: docs/troubleshooting.md#datasource-unhealthy-or-two-defaults.
        self.health_errors: dict[str, str] = {}  # uid -> message: that datasource's health is ERROR
        # uids whose failed check answers 500 "Plugin health check failed" (the plugin returned an error instead of
        # a result, pkg/tsdb/loki/healthcheck.go CheckHealth): the cause is only in the log.
        self.generic_health: set[str] = set()
        self.crashed = False  # set by start() when two provisioned datasources are default
        self.rotate_after: int | None = None  # a session token answers this many requests, then 401 session.token.rotate
        self._session_uses: dict[str, int] = {}
        self._crash_url = ""
        for spec in datasources or []:
            self.add_datasource(spec)
        for spec in dashboards or []:
            self.add_dashboard(spec)
        for method, pattern, handler in [
            ("GET", r"/api/health", self._health),
            ("POST", r"/login", self._login),
            ("GET", r"/api/search", self._search),
            ("GET", r"/api/dashboards/uid/(?P<uid>[^/]+)", self._dashboard),
            ("GET", r"/api/folders", self._folder_list),
            ("GET", r"/api/datasources", self._datasource_list),
            ("GET", r"/api/datasources/uid/(?P<uid>[^/]+)", self._datasource),
            ("GET", r"/api/datasources/uid/(?P<uid>[^/]+)/health", self._datasource_health),
            ("POST", r"/api/ds/query", self._ds_query),
            ("POST", r"/api/admin/provisioning/dashboards/reload", self._reload_dashboards),
        ]:
            self.route(method, pattern, handler)

    # -- configuration ---------------------------------------------------------
    def add_datasource(self, spec: dict[str, Any]) -> Datasource:
        """spec: {uid, name, type, url, isDefault?, backend_url?, jsonData?, readOnly?}."""
        ds = Datasource(spec["uid"], spec.get("name", spec["uid"]), spec["type"], spec.get("url", ""),
                        bool(spec.get("isDefault", False)), spec.get("backend_url"), dict(spec.get("jsonData", {})),
                        bool(spec.get("readOnly", True)), id=len(self._datasources) + 1)
        self._datasources.append(ds)
        return ds

    def add_dashboard(self, spec: dict[str, Any]) -> None:
        """spec: {uid, title, folder?, provisioned?, tags?, panels: [{title, targets: [{expr, refId, datasource}]}]}."""
        dash = Dashboard(spec["uid"], spec.get("title", ""), spec.get("folder"), bool(spec.get("provisioned", True)),
                         list(spec.get("panels", [])), list(spec.get("tags", [])),
                         spec.get("file") or f"{spec['uid']}.json", bool(spec.get("wrapped", False)),
                         str(spec.get("invalid_json", "")), spec.get("provider", "default"))
        file_path = f"/var/lib/grafana/dashboards/{dash.provider}/{dash.file}"
        if dash.provisioned and dash.invalid_json:  # saveDashboard: readDashboardFromFile fails, nothing is saved
            self._rejected.append(dash)
            self._in_pass("provisioning.dashboard", "error", "failed to load dashboard from ",
                          context={"type": "file", "name": dash.provider}, file=file_path, error=dash.invalid_json)
            return
        if dash.provisioned and (dash.wrapped or not dash.title):
            self._rejected.append(dash)
            self._in_pass("provisioning.dashboard", "error", "failed to load dashboard from ",
                          context={"type": "file", "name": dash.provider}, file=file_path,
                          error="Dashboard title cannot be empty")
            return
        if dash.uid in self._dashboards:
            first = self._dashboards[dash.uid]
            if dash.provisioned and first.provisioned:
                self._in_pass("provisioning.dashboard", "warn", "the same UID is used more than once",
                              context={"type": "file", "name": dash.provider}, uid=dash.uid, times=2,
                              providers=f"[{' '.join(sorted({first.provider, dash.provider}))}]")
                self._in_pass("provisioning.dashboard", "warn",
                              "dashboards provisioning provider has no database write permissions because of duplicates",
                              context={"type": "file", "name": dash.provider}, provider=dash.provider, orgId=1)
            return  # the first writer wins; the duplicate never lands
        if dash.folder and dash.folder not in self._folders:
            n = len(self._folders) + 1
            self._folders[dash.folder] = {"id": n, "uid": slugify(dash.folder) or f"folder{n}", "title": dash.folder}
        dash.id = len(self._dashboards) + 1
        self._dashboards[dash.uid] = dash

    def _in_pass(self, *args: Any, **fields: Any) -> None:
        """A line Grafana logs while provisioning: held for the next pass, or a pass of its own once running."""
        self._pass_lines.append((args, fields))
        if self._started:
            self.provision()

    def provision(self) -> None:
        """One dashboard provisioning pass (at start, or a reload): its start, what it found, its end."""
        self.log("provisioning.dashboard", "info", "starting to provision dashboards")
        for args, fields in self._pass_lines:
            self.log(*args, **fields)
        self.log("provisioning.dashboard", "info", "finished to provision dashboards")
        self._pass_lines = []

    def log(self, logger: str, level: str, msg: str, context: dict[str, Any] | None = None, **fields: Any) -> None:
        """Append one Grafana logfmt line (`logger=... t=... level=... msg=...`) to the log file."""
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
        parts = [f"logger={logger}"] + [f"{k}={logfmt_value(v)}" for k, v in (context or {}).items()]
        parts += [f"t={stamp}", f"level={level}", f"msg={json.dumps(msg)}"]
        parts += [f"{k}={logfmt_value(v)}" for k, v in fields.items()]
        line = " ".join(parts)
        with self._log_lock:
            self.log_lines.append(line)
            if self.log_path:
                with self.log_path.open("a") as f:
                    f.write(line + "\n")

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> "FakeGrafana":
        self.log("provisioning.datasources", "info", "starting to provision datasources")
        if sum(1 for ds in self._datasources if ds.is_default and ds.read_only) > 1:
            # Real Grafana exits at startup and the pod CrashLoops: nothing listens.
            self.crashed = True
            self.log("provisioning.datasources", "error", "Failed to provision data sources", error=TWO_DEFAULTS)
            self.log("server", "error", "Stopped background service", reason=f"Datasource provisioning error: {TWO_DEFAULTS}")
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self._crash_url = f"http://127.0.0.1:{s.getsockname()[1]}"
            return self
        if self.startup_race:  # the sidecar was still writing a file; its reload a moment later reads it whole
            self.log("provisioning.dashboard", "info", "starting to provision dashboards")
            self.log("provisioning.dashboard", "error", "failed to load dashboard from ", context={"type": "file", "name": "istio"},
                     file="/var/lib/grafana/dashboards/istio/istio-mesh.json", error="unexpected end of JSON input")
            self.log("provisioning.dashboard", "info", "finished to provision dashboards")
        self._walk_files()
        self.provision()
        self._started = True
        super().start()
        if self._providers:
            self._poller = threading.Thread(target=self._poll_files, name="grafana-file-provider", daemon=True)
            self._poller.start()
        return self

    @property
    def url(self) -> str:
        return self._crash_url if self.crashed else super().url

    def stop(self) -> None:
        self._stopping.set()
        if self._poller:
            self._poller.join(timeout=15)
        if not self.crashed:
            super().stop()

    # -- file provisioning (pkg/services/provisioning/dashboards/file_reader.go) ---------------
    def add_file_provider(self, provider: FileProvider) -> FileProvider:
        """Provision the provider's folder at start (or now, when running), every update_interval and on each reload."""
        self._providers.append(provider)
        if self._started and self._poller is None:
            self._walk_files()
            self._poller = threading.Thread(target=self._poll_files, name="grafana-file-provider", daemon=True)
            self._poller.start()
        return provider

    def _poll_files(self) -> None:
        """pollChanges: one walk per provider every updateIntervalSeconds."""
        interval = min(p.update_interval for p in self._providers)
        while not self._stopping.wait(interval):
            self._walk_files()

    def _reload_dashboards(self, request: Request) -> Response:
        """pkg/api/admin_provisioning.go AdminProvisioningReloadDashboards: every provider walks its folder now."""
        self.reloads += 1
        self._walk_files()
        self.provision()
        return Response(200, {"message": "Dashboards config reloaded"})

    def _walk_files(self) -> None:
        with self._walk_lock:
            for provider in self._providers:
                self._walk(provider)

    def _walk(self, p: FileProvider) -> None:
        """walkDisk: every *.json under the path (dot-folders skipped); a file gone deletes its dashboard, or with
        disableDeletion only unprovisions it; with foldersFromFilesStructure a file in a subfolder goes to the folder
        named after that subfolder (filepath.Base of its directory), one at the top to General."""
        root = p.path
        found = {}
        if root.is_dir():
            for f in sorted(root.rglob("*.json")):
                if any(part.startswith(".") for part in f.relative_to(root).parts[:-1]) or not f.is_file():
                    continue
                found[f.relative_to(root).as_posix()] = f
        for uid, dash in list(self._dashboards.items()):
            if dash.provider == p.name and dash.provisioned and dash.body is not None and dash.file not in found:
                if p.disable_deletion:
                    dash.provisioned = False  # UnprovisionDashboard: the dashboard stays, its provisioning row goes
                else:
                    del self._dashboards[uid]  # DeleteProvisionedDashboard
        for rel, f in found.items():
            if p.folders_from_files_structure:
                folder = f.parent.name if f.parent != root else ""
            else:
                folder = p.folder
            self._save_file(p, rel, f, folder or None)

    def _save_file(self, p: FileProvider, rel: str, f: Path, folder: str | None) -> None:
        file_path = str(p.path / rel)
        try:
            body = json.loads(f.read_text())
        except (OSError, ValueError) as e:
            self.log("provisioning.dashboard", "error", "failed to load dashboard from ",
                     context={"type": "file", "name": p.name}, file=file_path, error=str(e))
            return
        if not isinstance(body, dict) or not body.get("title"):
            self.log("provisioning.dashboard", "error", "failed to load dashboard from ",
                     context={"type": "file", "name": p.name}, file=file_path, error="Dashboard title cannot be empty")
            return
        uid = str(body.get("uid") or slugify(body["title"]))
        current = self._dashboards.get(uid)
        if current is not None and (current.provider, current.file) != (p.name, rel):
            self.log("provisioning.dashboard", "warn", "the same UID is used more than once",
                     context={"type": "file", "name": p.name}, uid=uid, times=2, providers=f"[{p.name}]")
            return
        if current is not None and current.body == body and current.folder == folder:
            return  # up to date (the checksum matches)
        if folder and folder not in self._folders:
            n = len(self._folders) + 1
            self._folders[folder] = {"id": n, "uid": slugify(folder) or f"folder{n}", "title": folder}
        dash = Dashboard(uid, body["title"], folder, True, list(body.get("panels") or []), list(body.get("tags") or []),
                         rel, provider=p.name, body=body)
        dash.id = current.id if current else len(self._dashboards) + 1
        self._dashboards[uid] = dash

    def dispatch(self, request: Request) -> Response:
        if request.path != "/api/health" and request.path.startswith("/api/"):
            denied = self._check_auth(request)
            if denied:
                return denied
        response = super().dispatch(request)
        if response.status == 404 and response.body == "404 page not found\n":
            return Response(404, {"message": "Not found"})
        return response

    def _check_auth(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        cookies = dict(part.strip().split("=", 1) for part in request.headers.get("Cookie", "").split(";") if "=" in part)
        if not header and cookies.get(SESSION_COOKIE) in self._sessions:
            return self._session_use(cookies[SESSION_COOKIE])
        if not header.startswith("Basic "):
            return Response(401, UNAUTHORIZED)
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return Response(400, {"message": "Invalid Basic Auth Header", "messageId": "basic-auth.invalid-header",
                                  "statusCode": 400, "traceID": ""})
        if (user, password) != (self.admin_user, self.admin_password):
            return Response(401, BAD_PASSWORD)
        return None

    def _session_use(self, token: str) -> Response | None:
        """Grafana answers 401 session.token.rotate once a token is older than its rotation interval."""
        uses = self._session_uses[token] = self._session_uses.get(token, 0) + 1
        if self.rotate_after is not None and uses > self.rotate_after:
            return Response(401, TOKEN_ROTATE)
        return None

    # -- handlers ---------------------------------------------------------------------
    def _login(self, request: Request) -> Response:
        """POST /login {user, password}: 200 and a session cookie, as the login form does (pkg/api/login.go)."""
        try:
            body = request.json() or {}
        except ValueError:
            return Response(400, {"message": "bad request data", "statusCode": 400, "traceID": ""})
        if (body.get("user"), body.get("password")) != (self.admin_user, self.admin_password):
            return Response(401, BAD_PASSWORD)
        token = secrets.token_hex(16)
        self._sessions.add(token)
        return Response(200, {"message": "Logged in", "redirectUrl": "/"},
                        headers={"Set-Cookie": f"{SESSION_COOKIE}={token}; Path=/; Max-Age=2592000; HttpOnly; SameSite=Lax"})

    def _health(self, request: Request) -> Response:
        return Response(200, {"commit": "fake0000", "database": "ok", "version": self.version})

    def _folder_hit(self, folder: dict[str, Any]) -> dict[str, Any]:
        slug = slugify(folder["title"])
        return {"id": folder["id"], "uid": folder["uid"], "title": folder["title"], "uri": f"db/{slug}",
                "url": f"/dashboards/f/{folder['uid']}/{slug}", "slug": "", "type": "dash-folder", "tags": [],
                "isStarred": False, "sortMeta": 0}

    def _dash_hit(self, dash: Dashboard) -> dict[str, Any]:
        slug = slugify(dash.title)
        hit: dict[str, Any] = {"id": dash.id, "uid": dash.uid, "title": dash.title, "uri": f"db/{slug}",
                               "url": f"/d/{dash.uid}/{slug}", "slug": "", "type": "dash-db", "tags": dash.tags,
                               "isStarred": False}
        if dash.folder:
            folder = self._folders[dash.folder]
            hit.update({"folderId": folder["id"], "folderUid": folder["uid"], "folderTitle": folder["title"],
                        "folderUrl": f"/dashboards/f/{folder['uid']}/{slugify(folder['title'])}"})
        hit["sortMeta"] = 0
        return hit

    def _search(self, request: Request) -> Response:
        kind = request.arg("type")
        text = (request.arg("query") or "").lower()
        folder_uids = {u for v in request.query.get("folderUIDs", []) for u in v.split(",") if u}
        dash_uids = set(request.query.get("dashboardUIDs", []))
        tags = set(request.query.get("tag", []))
        limit = int(request.arg("limit") or 1000)
        hits: list[dict[str, Any]] = []
        if kind in (None, "", "dash-folder") and not folder_uids and not dash_uids and not tags:
            hits += [self._folder_hit(f) for f in self._folders.values() if text in f["title"].lower()]
        if kind in (None, "", "dash-db"):
            for dash in list(self._dashboards.values()):
                folder_uid = self._folders[dash.folder]["uid"] if dash.folder else "general"
                if text not in dash.title.lower() or (folder_uids and folder_uid not in folder_uids):
                    continue
                if (dash_uids and dash.uid not in dash_uids) or not tags <= set(dash.tags):
                    continue
                hits.append(self._dash_hit(dash))
        hits.sort(key=lambda h: (h["type"] != "dash-folder", h["title"].lower()))
        return Response(200, hits[:limit])

    def _dashboard(self, request: Request) -> Response:
        dash = self._dashboards.get(request.params["uid"])
        if dash is None:
            return Response(404, {"message": "Dashboard not found"})
        slug = slugify(dash.title)
        folder = self._folders.get(dash.folder or "", {"id": 0, "uid": "", "title": "General"})
        stamp = "2024-01-01T00:00:00Z"
        meta = {
            "type": "db", "canSave": True, "canEdit": True, "canAdmin": True, "canStar": True, "canDelete": True,
            "slug": slug, "url": f"/d/{dash.uid}/{slug}", "expires": EPOCH, "created": stamp, "updated": stamp,
            "updatedBy": "Anonymous" if dash.provisioned else self.admin_user,
            "createdBy": "Anonymous" if dash.provisioned else self.admin_user, "version": 1, "hasAcl": False,
            "isFolder": False, "folderId": folder["id"], "folderUid": folder["uid"], "folderTitle": folder["title"],
            "folderUrl": f"/dashboards/f/{folder['uid']}/{slugify(folder['title'])}" if folder["uid"] else "",
            "provisioned": dash.provisioned, "provisionedExternalId": dash.file if dash.provisioned else "",
            "annotationsPermissions": {
                "dashboard": {"canAdd": True, "canEdit": True, "canDelete": True},
                "organization": {"canAdd": True, "canEdit": True, "canDelete": True},
            },
        }
        panels = []
        for i, panel in enumerate(dash.panels, start=1):
            targets = [dict(t) for t in panel.get("targets", [])]
            for j, target in enumerate(targets):
                target.setdefault("refId", chr(ord("A") + j))
            first_ds = targets[0].get("datasource") if targets else None
            panels.append({"id": i, "type": panel.get("type", "timeseries"), "title": panel.get("title", ""),
                           "datasource": panel.get("datasource", first_ds), "targets": targets,
                           "gridPos": {"h": 8, "w": 12, "x": 0, "y": (i - 1) * 8}})
        body = {"id": dash.id, "uid": dash.uid, "title": dash.title, "tags": dash.tags, "panels": panels,
                "schemaVersion": 39, "version": 1, "editable": True, "time": {"from": "now-6h", "to": "now"},
                "templating": {"list": []}, "annotations": {"list": []}}
        if dash.body is not None:  # a file provider's dashboard: Grafana serves the JSON it saved from the file
            body = {**json.loads(json.dumps(dash.body)), "id": dash.id, "uid": dash.uid}
        return Response(200, {"meta": meta, "dashboard": body})

    def _folder_list(self, request: Request) -> Response:
        return Response(200, [{"id": f["id"], "uid": f["uid"], "title": f["title"]} for f in self._folders.values()])

    def _ds_item(self, ds: Datasource) -> dict[str, Any]:
        return {"id": ds.id, "uid": ds.uid, "orgId": 1, "name": ds.name, "type": ds.type,
                "typeName": TYPE_NAMES.get(ds.type, ds.type), "typeLogoUrl": LOGOS.get(ds.type, ""),
                "access": "proxy", "url": ds.url, "user": "", "database": "", "basicAuth": False,
                "isDefault": ds.is_default, "jsonData": ds.json_data, "readOnly": ds.read_only}

    def _datasource_list(self, request: Request) -> Response:
        return Response(200, sorted((self._ds_item(d) for d in self._datasources), key=lambda d: d["name"].lower()))

    def _find_ds(self, uid: str) -> Datasource | None:
        return next((d for d in self._datasources if d.uid == uid), None)

    def _datasource(self, request: Request) -> Response:
        ds = self._find_ds(request.params["uid"])
        if ds is None:
            return Response(404, {"message": "Data source not found"})
        item = self._ds_item(ds)
        item.update({"basicAuthUser": "", "withCredentials": False, "secureJsonFields": {}, "version": 1})
        return Response(200, item)

    def _datasource_health(self, request: Request) -> Response:
        uid = request.params["uid"]
        if not re.fullmatch(r"[a-zA-Z0-9\-_]{1,40}", uid):
            return Response(400, {"message": "UID is invalid"})
        ds = self._find_ds(uid)
        if ds is None:
            return Response(500, {"message": "Unable to load datasource metadata"})
        if uid in self.health_errors:
            ok, message = False, self.health_errors[uid]
        elif ds.type == "loki":
            ok, message = self._loki_health(ds)
        elif ds.type == "prometheus":
            ok, message = self._prometheus_health(ds)
        else:
            return Response(500, {"message": "Plugin health check failed", "messageId": "plugin.healthCheckFailed",
                                  "statusCode": 500, "traceID": ""})
        if not ok and uid in self.generic_health:
            self.log(f"tsdb.{ds.type}", "warn", f"error performing {ds.type} healthcheck",
                     context={"endpoint": "checkHealth", "pluginId": ds.type, "dsName": ds.name, "dsUID": ds.uid,
                              "uname": self.admin_user}, err=message)
            return Response(500, {"message": "Plugin health check failed", "messageId": "plugin.healthCheckFailed",
                                  "statusCode": 500, "traceID": ""})
        return Response(200 if ok else 400, {"status": "OK" if ok else "ERROR", "message": message})

    # -- talking to the backing datasource -----------------------------------------------
    def _fetch(self, ds: Datasource, method: str, path: str, params: dict[str, str]) -> tuple[int, str, str]:
        """(status, body, go_error) against the backing URL; status 0 when the connection fails."""
        base = (ds.backend_url or ds.url).rstrip("/")
        query = urllib.parse.urlencode(params)
        url = f"{base}{path}" + (f"?{query}" if method == "GET" else "")
        go_url = f"{ds.url.rstrip('/')}{path}" + (f"?{query}" if method == "GET" else "")
        verb = "Get" if method == "GET" else "Post"
        host = urllib.parse.urlsplit(base).hostname or ""
        if host not in _LOOPBACK:  # never leave loopback: behave like an unresolvable in-cluster name
            return 0, "", f'{verb} "{go_url}": dial tcp: lookup {host} on 10.96.0.10:53: no such host'
        data = urllib.parse.urlencode(params).encode() if method == "POST" else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"} if data else {})
        try:
            with _OPENER.open(req, timeout=5) as resp:
                return resp.status, resp.read().decode(errors="replace"), ""
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace"), ""
        except (urllib.error.URLError, OSError):
            port = urllib.parse.urlsplit(base).port
            return 0, "", f'{verb} "{go_url}": dial tcp {host}:{port}: connect: connection refused'

    def _loki_error(self, ds: Datasource, status: int, body: str, go_error: str, query: str) -> str:
        """Grafana's readLokiError: the JSON "message" field or the whole text; logs like tsdb.loki."""
        text = go_error
        if not go_error:
            try:
                text = json.loads(body).get("message") or body
            except (ValueError, AttributeError):
                text = body
        text = text.strip()
        self.log("tsdb.loki", "error", "Error received from Loki",
                 context={"endpoint": "checkHealth", "pluginId": "loki", "dsName": ds.name, "dsUID": ds.uid,
                          "uname": self.admin_user, "fromAlert": "false"},
                 stage="databaseRequest", statusCode=status, query=query, lokiPath="/loki/api/v1/query",
                 status="error", error=text, statusSource="downstream")
        return text

    def _loki_health(self, ds: Datasource) -> tuple[bool, str]:
        prefix = "There was an error returned querying the Loki API."
        query = "vector(1)+vector(1)"
        status, body, go_error = self._fetch(ds, "GET", "/loki/api/v1/query",
                                             {"direction": "backward", "query": query, "time": "4000000000"})
        if go_error or not 200 <= status < 300:
            return False, f"{prefix}: {self._loki_error(ds, status, body, go_error, query)}"
        try:
            result = json.loads(body)["data"]["result"]
            if len(result) != 1 or float(result[0]["value"][1]) != 2:
                return False, f"{prefix}: invalid response"
        except (ValueError, KeyError, IndexError, TypeError):
            return False, f"{prefix}: no frames"
        return True, "Successfully queried the Loki API."

    def _prometheus_health(self, ds: Datasource) -> tuple[bool, str]:
        suffix = "There was an error returned querying the Prometheus API."
        status, body, go_error = self._fetch(ds, "POST", "/api/v1/query", {"query": "1+1", "time": "4"})
        if go_error:
            return False, f"{go_error} - {suffix}"
        if not 200 <= status < 300:
            try:
                err = json.loads(body).get("error") or body
            except (ValueError, AttributeError):
                err = body
            return False, f"{err.strip()} - {suffix}"
        return True, "Successfully queried the Prometheus API."

    # -- /api/ds/query ---------------------------------------------------------------------
    def _ds_query(self, request: Request) -> Response:
        try:
            payload = request.json()
            queries = payload["queries"]
        except (ValueError, KeyError, TypeError):
            return Response(400, {"message": "bad request data"})
        now_ms = int(time.time() * 1000)
        start_ms = _grafana_time(payload.get("from", "now-1h"), now_ms)
        end_ms = _grafana_time(payload.get("to", "now"), now_ms)
        results: dict[str, Any] = {}
        for q in queries:
            ref = q.get("refId", "A")
            ds = self._find_ds((q.get("datasource") or {}).get("uid", ""))
            if ds is None:
                return Response(400, {"message": "Query data error", "messageId": "query.dataSourceNotFound",
                                      "statusCode": 400, "traceID": ""})
            results[ref] = self._run_query(ds, q, start_ms, end_ms)
        status = 400 if any("error" in r for r in results.values()) else 200
        return Response(status, {"results": results})

    def _run_query(self, ds: Datasource, q: dict[str, Any], start_ms: int, end_ms: int) -> dict[str, Any]:
        expr = q.get("expr", "")
        step_s = max(int(q.get("intervalMs", 15000)) // 1000, 1)
        instant = bool(q.get("instant")) or q.get("queryType") == "instant"
        if ds.type == "prometheus":
            path, params = (("/api/v1/query", {"query": expr, "time": str(end_ms / 1000)}) if instant else
                            ("/api/v1/query_range", {"query": expr, "start": str(start_ms / 1000),
                                                     "end": str(end_ms / 1000), "step": str(step_s)}))
            status, body, go_error = self._fetch(ds, "POST", path, params)
        else:
            params = {"query": expr, "direction": q.get("direction", "backward"), "limit": str(q.get("maxLines", 1000))}
            if instant:
                path = "/loki/api/v1/query"
                params["time"] = str(end_ms * 1_000_000)
            else:
                path = "/loki/api/v1/query_range"
                params.update(start=str(start_ms * 1_000_000), end=str(end_ms * 1_000_000), step=f"{step_s * 1000}ms")
            status, body, go_error = self._fetch(ds, "GET", path, params)
        if go_error:
            return {"error": go_error, "errorSource": "downstream", "status": 500}
        if not 200 <= status < 300:
            try:
                text = json.loads(body).get("error") or json.loads(body).get("message") or body
            except (ValueError, AttributeError):
                text = body
            return {"error": text.strip(), "errorSource": "downstream", "status": status}
        return {"status": 200, "frames": _frames(q.get("refId", "A"), json.loads(body)["data"])}


def _grafana_time(value: str, now_ms: int) -> int:
    """Grafana time range strings: epoch ms or now[-<n><unit>]."""
    if re.fullmatch(r"\d+", str(value)):
        return int(value)
    m = re.fullmatch(r"now(?:-(\d+)([smhdw]))?", str(value))
    if not m:
        return now_ms
    if not m.group(1):
        return now_ms
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
    return now_ms - int(m.group(1)) * unit * 1000


def _frames(ref: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """Data frames (schema + data.values) for a Prometheus/Loki result, one frame per series or stream."""
    frames = []
    kind = data.get("resultType")
    for series in data.get("result", []):
        if kind == "streams":
            values = series.get("values", [])
            fields = [{"name": "labels", "type": "other", "typeInfo": {"frame": "json.RawMessage"}},
                      {"name": "Time", "type": "time", "typeInfo": {"frame": "time.Time"}},
                      {"name": "Line", "type": "string", "typeInfo": {"frame": "string"}},
                      {"name": "tsNs", "type": "string", "typeInfo": {"frame": "string"}}]
            cols = [[series.get("stream", {})] * len(values), [int(v[0]) // 1_000_000 for v in values],
                    [v[1] for v in values], [v[0] for v in values]]
            meta = {"type": "log-lines", "typeVersion": [0, 0]}
        else:
            points = series.get("values") or ([series["value"]] if "value" in series else [])
            fields = [{"name": "Time", "type": "time", "typeInfo": {"frame": "time.Time"}},
                      {"name": "Value", "type": "number", "typeInfo": {"frame": "float64"},
                       "labels": series.get("metric", {})}]
            cols = [[int(float(p[0]) * 1000) for p in points], [float(p[1]) for p in points]]
            meta = {"type": "numeric-multi" if kind == "vector" else "timeseries-multi", "typeVersion": [0, 1]}
        frames.append({"schema": {"refId": ref, "meta": meta, "fields": fields}, "data": {"values": cols}})
    return frames
