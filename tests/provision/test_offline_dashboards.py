"""--offline DIR gives Grafana what the online download gives it; files that are not dashboards are refused.

The real dashboards of ../shared/dashboards/ (see its SOURCES.md) are the offline folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conformance.core.errors import ConfigError
from conformance.provision import dashboards
from tests.shared import shared

DECLARED = dashboards.declared()
BY_KEY = {d.key: d for d in DECLARED}


@pytest.fixture
def real_folder():
    real = shared("dashboards")
    missing = [f"{d.key}.json" for d in DECLARED if not (real / f"{d.key}.json").is_file()]
    assert not missing, f"{real} lacks declared dashboards: {', '.join(missing)}"
    return real


def configmap_files(folder: Path) -> dict[str, dict]:
    docs = list(yaml.safe_load_all(dashboards.offline_configmaps(folder, DECLARED, "monitoring")))
    return {name: json.loads(text) for doc in docs for name, text in doc["data"].items()}


def test_the_real_folder_is_accepted_including_istio_s_dashboards_without_uid(real_folder):
    dashboards.check_offline_dir(real_folder, DECLARED)
    files = configmap_files(real_folder)
    assert sorted(files) == sorted(f"{d.key}.json" for d in DECLARED)
    no_uid = sorted(k for k, doc in files.items() if not doc.get("uid"))
    # Istio 1.29.6 ships these three without a top-level uid; Grafana assigns one.
    assert no_uid == ["istio-performance.json", "istio-service.json", "istio-workload.json"]


def test_loki_placeholders_point_at_the_declared_datasource_as_online(real_folder):
    raw = (real_folder / "logs-app.json").read_text()
    assert raw.count('"datasource": "${DS_LOKI}"') == 3, "the test data is 13639 revision 2"
    text = json.dumps(configmap_files(real_folder)["logs-app.json"])
    assert "${DS_LOKI}" not in text
    assert text.count('"datasource": "Loki"') == 3  # BY_KEY["logs-app"].datasource is "Loki"
    assert BY_KEY["logs-app"].datasource == "Loki"


def test_the_rewrite_is_the_chart_s_own_sed(real_folder, tmp_path):
    """Same bytes as grafana chart 12.11.1's download_dashboards.sh sed, run by the real sed."""
    sed = shutil.which("sed")
    if sed is None:
        pytest.skip("no sed on this machine")
    for d in DECLARED:
        raw = (real_folder / f"{d.key}.json").read_bytes()
        expr = f'/-- .* --/! s/"datasource":.*,/"datasource": "{d.datasource}",/g'
        by_sed = subprocess.run([sed, expr], input=raw, capture_output=True, check=True).stdout.decode()
        assert dashboards.online_rewrite(raw.decode(), d.datasource) == by_sed, d.key


def test_placeholder_lists_are_rewritten_like_sed_dash_e():
    text = '{"a": "${DS_LOKI}",\n "b": "$DS_LOKI",\n "c": "-- ${DS_LOKI} --"}'
    out = dashboards.online_rewrite(text, [{"name": "DS_LOKI", "value": "Loki"}])
    # A line naming a built-in "-- x --" datasource is left whole, as sed's address does.
    assert out == '{"a": "Loki",\n "b": "Loki",\n "c": "-- ${DS_LOKI} --"}'
    sed = shutil.which("sed")
    if sed:
        expr = "/-- .* --/! s/\\$\\{?DS_LOKI\\}?/Loki/g"
        assert subprocess.run([sed, "-E", expr], input=text, capture_output=True, text=True,
                              check=True).stdout == out


NOT_DASHBOARDS = [
    ("wrapper.json", json.dumps({"dashboard": {"title": "x", "panels": [{}]}}), "wrapper"),
    ("list.json", json.dumps([{"title": "x"}]), "a JSON list"),
    ("empty.json", "", "not JSON"),
    ("html.json", "<html>404 Not Found</html>", "not JSON"),
    ("untitled.json", json.dumps({"panels": [{}]}), "no top-level title"),
    ("panelless.json", json.dumps({"title": "x", "panels": []}), "no panels"),
]


@pytest.mark.parametrize("name,content,why", NOT_DASHBOARDS, ids=[n[0] for n in NOT_DASHBOARDS])
def test_a_file_that_is_not_a_dashboard_is_refused_naming_it(real_folder, tmp_path, name, content, why):
    folder = tmp_path / "offline"
    shutil.copytree(real_folder, folder)
    (folder / "istio-mesh.json").write_text(content)
    with pytest.raises(ConfigError) as e:
        dashboards.check_offline_dir(folder, DECLARED)
    message = str(e.value)
    assert f"{folder / 'istio-mesh.json'}" in message and why in message and "\n" not in message


def test_a_rewrite_that_breaks_the_json_is_refused(tmp_path):
    folder = tmp_path / "offline"
    folder.mkdir()
    for d in DECLARED:
        (folder / f"{d.key}.json").write_text(json.dumps({"title": d.key, "panels": [{}]}, indent=1))
    # One line, two panels: sed's greedy `.*,` eats the first panel's closing brace.
    (folder / "logs-app.json").write_text('{"title": "x", "panels": [{"datasource": "${DS_LOKI}"}, {"id": 2}]}\n')
    with pytest.raises(ConfigError, match="leaves invalid JSON"):
        dashboards.check_offline_dir(folder, DECLARED)


@pytest.mark.parametrize("text,problem", [
    ("", "the file is empty"),
    ('{"title": "Logs / App", "panels": []}', "no panels"),
    ('{"title": "Logs / App", "panels": [{"type": "logs"}]}', None),
])
def test_a_provisioned_file_is_judged_by_its_panels(text, problem):
    found = dashboards.provisioned_problem(text, BY_KEY["logs-app"])
    assert (found is None) if problem is None else (problem in found)
