"""FakeDashboardSidecar: kiwigrid/k8s-sidecar 2.10.1 as the grafana chart runs it for dashboards, in a thread.

k8s-sidecar is itself Python on the kubernetes client; this follows its src/resources.py: against a real API
server `_watch_resource_iterator` (METHOD WATCH, the chart's default: kubernetes.watch on the list call; unlike it,
each watch resumes where a list left off, see _watch_once), against
the fake one, which refuses watch, `list_resources` (the list-based sync of METHOD=SLEEP), processing only
ConfigMaps whose resourceVersion changed, as WATCH gets an event only for those; and src/helpers.py: the label selector is `LABEL=LABEL_VALUE` (or `LABEL` alone when the value is
empty); NAMESPACE ALL lists every namespace, else each listed one; `_get_destination_folder` puts a ConfigMap
whose FOLDER_ANNOTATION is set into FOLDER/<value> (an absolute value as is); each data key is a file
(`write_data_to_file` rewrites only when the sha256 differs); a ConfigMap no longer listed has its files removed
from the folder they were written to (`remove_file`); when files changed it POSTs REQ_URL with basic auth.
Its log lines go to the Grafana pod's grafana-sc-dashboard container log in the fake API server (JSON, as
src/logger.py's default LOG_FORMAT).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import httpx
from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes import watch as kwatch
from tests import web


@dataclass
class SidecarConfig:
    """The container's env as grafana chart 12.11.1 templates/_pod.tpl renders it (names as the env names)."""

    LABEL: str = "grafana_dashboard"
    LABEL_VALUE: str = "1"
    FOLDER: str = "/tmp/dashboards"
    NAMESPACE: str = "ALL"
    RESOURCE: str = "both"
    FOLDER_ANNOTATION: str | None = "grafana_folder"
    METHOD: str = "WATCH"  # what the pod spec says; this fake syncs by listing either way
    REQ_URL: str = "http://localhost:3000/api/admin/provisioning/dashboards/reload"
    REQ_METHOD: str = "POST"

    def env(self) -> list[dict]:
        return [{"name": k, "value": v} for k, v in vars(self).items() if v is not None]


@dataclass
class FakeDashboardSidecar:
    """Syncs labelled ConfigMaps of a (fake) API server into `folder` and asks Grafana to reload."""

    kubeconfig: Path
    context: str
    folder: Path  # where FOLDER is on this machine (the emptyDir Grafana's sidecarProvider reads)
    config: SidecarConfig
    reload_url: str  # REQ_URL as this machine reaches Grafana
    auth: tuple[str, str]  # REQ_USERNAME, REQ_PASSWORD
    sleep_time: float = 0.3  # SLEEP_TIME (60 s upstream); short so a self-test sees a change within a second
    log: Callable[[str], None] = lambda line: None
    # Fault switches -----------------------------------------------------------------
    watch: bool = False  # METHOD WATCH against an API server that serves watch (the real one); else list-based sync
    # WATCH_SERVER_TIMEOUT (60 s upstream): how long one watch lasts, and so how long stop() may wait.
    watch_timeout: float = 10.0
    keep_files: bool = False  # a sidecar that stopped syncing: a deleted ConfigMap's file stays on disk
    errors: list[BaseException] = field(default_factory=list)
    _known: dict[str, tuple[dict, Path, str]] = field(default_factory=dict)  # ns+name -> (data, folder, resourceVersion)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def connect(self) -> "FakeDashboardSidecar":
        """Its API client: start() connects, then syncs in a thread; a test may connect and call sync() itself."""
        self._core = kclient.CoreV1Api(kconfig.new_client_from_config(str(self.kubeconfig), context=self.context))
        return self

    def start(self) -> "FakeDashboardSidecar":
        self.connect()
        self._thread = threading.Thread(target=self._loop, name="dashboard-sidecar", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ends after the current watch or pass: the server closes a watch after watch_timeout, its read times out soon after."""
        self._stop.set()
        if self._thread:
            self._thread.join(self.watch_timeout + 30)
            assert not self._thread.is_alive(), "the fake sidecar's thread did not stop"

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
                if self.watch:
                    continue  # _watch_resource_loop starts the next watch at once: a pause would miss deletes
            except kclient.ApiException as e:  # _watch_resource_loop: logged, retried after ERROR_THROTTLE_SLEEP
                self._log("ERROR", f"ApiException when calling kubernetes: {e}\n")
            except Exception as e:  # noqa: BLE001 - kept for the test to see, as the sidecar logs and goes on
                self.errors.append(e)
                self._log("ERROR", f"Received unknown exception: {e}\n")
            self._stop.wait(self.sleep_time)

    def _log(self, level: str, msg: str) -> None:
        self.log(json.dumps({"time": datetime.now(timezone.utc).isoformat(), "level": level, "msg": msg}))

    def _dest(self, meta) -> Path:
        """_get_destination_folder: the annotation's value under FOLDER, or FOLDER."""
        annotation = self.config.FOLDER_ANNOTATION
        if annotation and meta.annotations and annotation in meta.annotations:
            value = meta.annotations[annotation]
            dest = Path(value) if value.startswith("/") else self.folder / value
            self._log("INFO", f"Found a folder override annotation, placing the {meta.name} in: "
                              f"{self.config.FOLDER}/{value}")
            return dest
        return self.folder

    def _selector(self) -> str:
        return f"{self.config.LABEL}={self.config.LABEL_VALUE}" if self.config.LABEL_VALUE else self.config.LABEL

    def _list_fn(self, ns: str):
        """_list_namespace: list_config_map_for_all_namespaces for ALL, else list_namespaced_config_map."""
        if ns == "ALL":
            return self._core.list_config_map_for_all_namespaces, {}
        return self._core.list_namespaced_config_map, {"namespace": ns}

    def sync(self) -> None:
        """One list_resources pass over ConfigMaps (RESOURCE configmap or both), or one watch (watch=True)."""
        if self.config.RESOURCE not in ("configmap", "both"):
            return
        if self.watch:
            return self._watch_once()
        items = []
        for ns in self.config.NAMESPACE.split(","):
            fn, args = self._list_fn(ns)
            items += fn(label_selector=self._selector(), limit=5, _request_timeout=10, **args).items
        self._reconcile(items)

    def _reconcile(self, items: list) -> None:
        """The listed ConfigMaps written, the files of those known and no longer listed removed; a request if changed."""
        changed, seen = False, set()
        for item in items:
            seen.add(item.metadata.namespace + item.metadata.name)
            changed |= self._apply(item)
        for key in [k for k in self._known if k not in seen]:
            changed |= self._drop(key)
        if changed:
            self._request()

    def _watch_once(self) -> None:
        """_watch_resource_iterator: ADDED/MODIFIED write, DELETED removes; a request after each change.
        One namespace of NAMESPACE (the upstream runs a thread per namespace); the server ends the watch after
        watch_timeout, and the loop starts the next one (upstream WATCH_SERVER_TIMEOUT, 60 s).

        Unlike k8s-sidecar 2.10.1, whose every watch starts without a resourceVersion (so a deletion while it
        reconnects is never seen), this one lists first, removing the files of ConfigMaps gone since, and watches
        from the list's resourceVersion, as an informer does: a healthy stack's self-test never loses a deletion by
        chance (a loaded machine once lost one between two watches). A sidecar that misses it is keep_files."""
        fn, args = self._list_fn(self.config.NAMESPACE.split(",")[0])
        listed = fn(label_selector=self._selector(), _request_timeout=10, **args)
        self._reconcile(listed.items)
        stream = kwatch.Watch().stream(fn, label_selector=self._selector(), timeout_seconds=int(self.watch_timeout),
                                       resource_version=listed.metadata.resource_version,
                                       _request_timeout=self.watch_timeout + 6, **args)
        for event in stream:
            item = event["object"]
            if event["type"] == "DELETED":
                changed = self._drop(item.metadata.namespace + item.metadata.name)
            elif event["type"] in ("ADDED", "MODIFIED"):
                changed = self._apply(item)
            else:
                continue
            if changed:
                self._request()
            if self._stop.is_set():
                return

    def _apply(self, item) -> bool:
        """_process_config_map for a ConfigMap that is there: its keys written, keys it lost (or its old folder) removed."""
        key = item.metadata.namespace + item.metadata.name
        old = self._known.get(key)
        if old is not None and old[2] == item.metadata.resource_version:
            return False  # unchanged: WATCH (the chart's METHOD) sends no event for it
        changed = False
        dest = self._dest(item.metadata)
        data = dict(item.data or {})
        for name, content in data.items():
            changed |= self._write(dest, name, content)
        if old is not None:  # keys gone from the ConfigMap, or all of them when its folder moved
            old_data, old_dest, _ = old
            for name in old_data:
                if old_dest != dest or name not in data:
                    changed |= self._remove(old_dest, name)
        self._known[key] = (data, dest, item.metadata.resource_version)
        return changed

    def _drop(self, key: str) -> bool:
        """_process_config_map(..., is_removed=True): the files of a ConfigMap gone, from the folder they went to."""
        if key not in self._known:
            return False
        old_data, old_dest, _ = self._known.pop(key)
        if self.keep_files:
            return False
        changed = False
        for name in old_data:
            changed |= self._remove(old_dest, name)
        return changed

    def _write(self, folder: Path, name: str, content: str) -> bool:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        if path.exists() and hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(content.encode()).digest():
            return False
        self._log("INFO", f"Writing {path} (text)")
        tmp = path.with_name(f".{name}.tmp")  # written whole, then renamed: Grafana's walk reads only *.json
        tmp.write_text(content)
        tmp.replace(path)
        return True

    def _remove(self, folder: Path, name: str) -> bool:
        path = folder / name
        if path.is_file():
            self._log("INFO", f"Removing {path}")
            path.unlink()
            return True
        self._log("ERROR", f"Unable to remove {path}, file not found")
        return False

    def _request(self) -> None:
        try:
            res = web.post(self.reload_url, auth=self.auth, json=None, timeout=10, trust_env=False)
            self._log("INFO", f"None sent to {self.config.REQ_URL}. Response: {res.status_code} {res.reason_phrase} {res.text}")
        except httpx.HTTPError as e:
            self._log("ERROR", f"HTTP error for URL {self.config.REQ_URL}: {e}")
