"""Grafana HTTP API: health, search, dashboards with provisioning meta, folders, datasources and their health."""

from __future__ import annotations

import json
from typing import Any

from conformance.core.access import Endpoint
from conformance.core.http import APIError, HTTPService

# Grafana rotates a session token every token_rotation_interval_minutes (10 by default,
# conf/defaults.ini); a stale one gets 401 with this messageId (pkg/services/authn/error.go).
TOKEN_ROTATE = "session.token.rotate"


def needs_rotation(error: APIError) -> bool:
    """True for Grafana's 401 that asks the client to rotate its session token."""
    if error.status != 401:
        return False
    try:
        return (json.loads(error.body) or {}).get("messageId") == TOKEN_ROTATE
    except (ValueError, AttributeError):
        return False


class GrafanaClient:
    """One Grafana; logs in with a session cookie when reached through the service proxy.

    The API server strips the Authorization header before proxying, so basic auth
    cannot pass through it; a session cookie can. When Grafana asks for the session
    token to be rotated, the client logs in again once and repeats the call.
    """

    def __init__(self, endpoint: Endpoint | HTTPService) -> None:
        if isinstance(endpoint, HTTPService):
            endpoint = Endpoint(endpoint, via="url")
        self.http = endpoint.http
        self._login = endpoint.login
        self._logged_in = endpoint.login is None

    @property
    def name(self) -> str:
        return self.http.name

    def _log_in(self) -> None:
        user, password = self._login
        self.http.request("POST", "/login", json={"user": user, "password": password})
        self._logged_in = True

    def _get(self, path: str, params: Any = None, **kw: Any) -> Any:
        if not self._logged_in:
            self._log_in()
        try:
            return self.http.get_json(path, params, **kw)
        except APIError as e:
            if self._login is None or not needs_rotation(e):
                raise
        self._log_in()  # a new session token; the stale one is never used again
        return self.http.get_json(path, params, **kw)

    def health(self) -> dict:
        """GET /api/health (no auth): {commit, database, version}."""
        return self.http.get_json("/api/health")

    def search(self, type: str = "dash-db", query: str | None = None, folder_uids: list[str] | None = None) -> list[dict]:
        """Search hits (uid, title, type, folderUid, folderTitle, url, ...)."""
        params: list[tuple[str, str]] = [("type", type), ("limit", "5000")]
        if query:
            params.append(("query", query))
        for uid in folder_uids or []:
            params.append(("folderUIDs", uid))
        return self._get("/api/search", params)

    def dashboard(self, uid: str) -> dict:
        """{meta: {provisioned, provisionedExternalId, folderTitle, folderUid, ...}, dashboard: {...}}."""
        return self._get(f"/api/dashboards/uid/{uid}")

    def folders(self) -> list[dict]:
        return self._get("/api/folders")

    def datasources(self) -> list[dict]:
        return self._get("/api/datasources")

    def datasource_health(self, uid: str) -> dict:
        """{status: OK|ERROR, message}; Grafana answers a failed check with 400 and the same shape, and a plugin
        that errs instead of answering with 500 {message: "Plugin health check failed"} (no status: ERROR here)."""
        answer = self._get(f"/api/datasources/uid/{uid}/health", ok=(400, 500))
        return answer if "status" in answer else {"status": "ERROR", **answer}
