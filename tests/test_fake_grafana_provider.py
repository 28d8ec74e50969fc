"""FakeGrafana's file provider as Grafana's file reader behaves (pkg/services/provisioning/dashboards/file_reader.go)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import web
from tests.fakes.grafana import FakeGrafana, FileProvider

AUTH = ("admin", "admin")


def write(folder: Path, rel: str, uid: str, title: str) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"uid": uid, "title": title, "panels": []}))


def hits(g: FakeGrafana) -> dict[str, str]:
    """uid -> folder title of every dashboard search shows."""
    return {h["uid"]: h.get("folderTitle", "General")
            for h in web.get(f"{g.url}/api/search", params={"type": "dash-db"}, auth=AUTH).json()}


def reload(g: FakeGrafana) -> None:
    r = web.post(f"{g.url}/api/admin/provisioning/dashboards/reload", auth=AUTH)
    assert r.status_code == 200 and r.json() == {"message": "Dashboards config reloaded"}


@pytest.fixture
def grafana():
    g = FakeGrafana(dashboards=[]).start()
    yield g
    g.stop()


@pytest.mark.parametrize("from_files, folder, expected", [
    # storeDashboardsInFoldersFromFileStructure: filepath.Base of the file's directory; the top level is General.
    (True, "", {"top": "General", "sub": "Team A", "deep": "B"}),
    # storeDashboardsInFolder: every file in the provider's folder.
    (False, "Sidecar", {"top": "Sidecar", "sub": "Sidecar", "deep": "Sidecar"}),
])
def test_folders_come_from_subfolders_only_with_folders_from_files_structure(grafana, tmp_path, from_files, folder, expected):
    write(tmp_path, "top.json", "top", "Top")
    write(tmp_path, "Team A/sub.json", "sub", "Sub")
    write(tmp_path, "x/B/deep.json", "deep", "Deep")
    write(tmp_path, ".hidden/skip.json", "skip", "Skipped")  # validateWalkablePath skips dot-folders
    (tmp_path / "notes.txt").write_text("not a dashboard")  # only *.json
    grafana.add_file_provider(FileProvider("p", tmp_path, folder=folder, folders_from_files_structure=from_files))
    assert hits(grafana) == expected


@pytest.mark.parametrize("disable_deletion, after", [(False, {}), (True, {"gone": "General"})])
def test_a_file_gone_deletes_its_dashboard_or_with_disable_deletion_unprovisions_it(grafana, tmp_path, disable_deletion, after):
    write(tmp_path, "gone.json", "gone", "Gone")
    grafana.add_file_provider(FileProvider("p", tmp_path, folders_from_files_structure=True,
                                           disable_deletion=disable_deletion))
    assert hits(grafana) == {"gone": "General"}
    (tmp_path / "gone.json").unlink()
    reload(grafana)
    assert hits(grafana) == after
    if disable_deletion:
        meta = web.get(f"{grafana.url}/api/dashboards/uid/gone", auth=AUTH).json()["meta"]
        assert meta["provisioned"] is False


def test_the_served_dashboard_is_the_files_json(grafana, tmp_path):
    path = tmp_path / "F" / "d.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"uid": "d", "title": "D", "templating": {"list": [{"name": "x"}]},
                                "panels": [{"id": 7, "title": "P", "targets": [{"expr": "up"}]}]}))
    grafana.add_file_provider(FileProvider("p", tmp_path, folders_from_files_structure=True))
    body = web.get(f"{grafana.url}/api/dashboards/uid/d", auth=AUTH).json()
    assert body["meta"]["provisionedExternalId"] == "F/d.json" and body["meta"]["folderTitle"] == "F"
    assert body["dashboard"]["panels"][0]["targets"] == [{"expr": "up"}]
    assert body["dashboard"]["templating"] == {"list": [{"name": "x"}]}
