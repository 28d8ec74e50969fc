"""Grafana's intent: the project's dashboard list on its own bring-up, the dashboards Grafana's providers provision on
a user's stack (read from /api/search?type=dash-db and each dashboard's meta); how the suite tells them apart."""

from __future__ import annotations

from conformance.clients.grafana import GrafanaClient
from conformance.probes.dashboards.intent import LISTED, PROJECT, PROVIDERS, dashboards_intent, provisioned_dashboards
from conformance.core.access import Access
from conformance.core.http import HTTPService
from conformance.core.topology import load_topology
from tests.fakes.grafana import FakeGrafana
from tests.fakes.kubeapi import FakeKubeAPI
from tests.suite_runner import run_suites, write_topology
from tests.test_discovery import access_for

PROVISIONED = "suites.test_dashboards::test_every_expected_dashboard_is_provisioned_in_its_folder"
GRAFANA_LABELS = {"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "grafana"}


def users_grafana(api: FakeKubeAPI, grafana: FakeGrafana) -> None:
    """The grafana chart 12.11.1 as its own release in namespace grafana (Service `service` 80 -> 3000, admin Secret)."""
    api.add_service("grafana", "grafana", grafana.url, port=80, port_name="service", target_port=3000,
                    labels=GRAFANA_LABELS)
    api.add_secret("grafana", "grafana", {"admin-user": "admin", "admin-password": grafana.admin_password})


def test_the_bring_up_s_grafana_expects_the_project_s_list(tmp_path):
    with FakeKubeAPI("oke") as api:
        api.add_stack_services()
        access, oke = access_for(tmp_path, api)
        intent = dashboards_intent(access, oke)
    assert intent.source == PROJECT
    assert intent.why == "oke Grafana is the bring-up's Service monitoring/kube-prometheus-stack-grafana:80"


def test_a_grafana_found_elsewhere_expects_what_its_providers_provision(tmp_path):
    with FakeKubeAPI("oke") as api, FakeGrafana() as grafana:
        users_grafana(api, grafana)
        access, oke = access_for(tmp_path, api)
        intent = dashboards_intent(access, oke)
    assert intent.source == PROVIDERS
    assert intent.describe() == (
        "the dashboards Grafana's providers provision (/api/search?type=dash-db, each /api/dashboards/uid/<uid> "
        "meta.provisioned or meta.provisionedExternalId): oke Grafana found at grafana/grafana:80 (labels "
        "app.kubernetes.io/name=grafana), not under the bring-up's name")


def grafana_by_url(folder, api: FakeKubeAPI, **keys):
    """An existing cluster whose topology gives Grafana's URL, with the cluster keys given (stack:, dashboards:)."""
    folder.mkdir(parents=True)
    topo = write_topology(folder, [{"name": "oke", "role": "primary", "provider": "existing", "context": "kind-oke",
                                    "kubeconfig": str(api.write_kubeconfig(folder / "kubeconfig")),
                                    "services": {"grafana": "http://grafana.example"}, **keys}])
    topology = load_topology(topo)
    return Access(topology), topology.primary


def test_a_grafana_given_by_url_is_a_user_s_unless_the_topology_says_stack_bring_up(tmp_path):
    """A URL says nothing of whose stack it is: what its providers provision, unless `stack: bring-up` (the project's
    own bring-up behind a URL) or a `dashboards:` list says otherwise; the report says which key decided."""
    with FakeKubeAPI("oke") as api:
        url = dashboards_intent(*grafana_by_url(tmp_path / "url", api))
        own = dashboards_intent(*grafana_by_url(tmp_path / "own", api, stack="bring-up"))
        mine = dashboards_intent(*grafana_by_url(tmp_path / "listed", api, dashboards=["Node Exporter / Nodes", "k8s-pods"]))
    assert (url.source, url.why) == (PROVIDERS, "the topology gives oke Grafana's URL and no stack: key (stack: "
                                                "bring-up expects this project's own)")
    assert own.source == PROJECT and own.why.startswith("the topology says stack: bring-up for oke (")
    assert (mine.source, mine.names) == (LISTED, ("Node Exporter / Nodes", "k8s-pods"))
    assert mine.describe().startswith("the dashboards Node Exporter / Nodes, k8s-pods, each provisioned by Grafana's "
                                      "providers (/api/dashboards/uid/<uid> meta.provisioned or meta.provisionedExternalId): "
                                      "the topology lists them for oke (dashboards: in ")


def test_provisioned_dashboards_are_those_whose_meta_says_so():
    dashboards = [
        {"uid": "a1", "title": "Nodes", "folder": "Infra", "file": "infra/nodes.json"},
        {"uid": "b2", "title": "Hand made", "provisioned": False},
        {"uid": "c3", "title": "Nodes again", "file": "other/nodes.json"},  # the same file name: keyed by uid
    ]
    with FakeGrafana(dashboards=dashboards) as fake:
        found = provisioned_dashboards(GrafanaClient(HTTPService("Grafana", fake.url, auth=("admin", "admin"))))
    by_uid = {d.uid: d for d in found}
    assert set(by_uid) == {"a1", "c3"}
    assert (by_uid["a1"].key, by_uid["a1"].folder_title, by_uid["a1"].file) == ("nodes", "Infra", "nodes.json")
    assert by_uid["c3"].key == "c3"


def run_on_users_grafana(tmp_path, grafana: FakeGrafana, *args: str, **keys):
    with FakeKubeAPI("oke") as api:
        users_grafana(api, grafana)
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        topo = write_topology(tmp_path, [{"name": "oke", "role": "primary", "provider": "existing",
                                          "context": "kind-oke", "kubeconfig": str(kubeconfig),
                                          "absent": ["loki", "kiali"], **keys}])
        return run_suites(tmp_path, "--topology", str(topo), "-m", "dashboards", *args)


def test_a_user_s_grafana_that_provisions_nothing_fails_naming_what_was_read(tmp_path):
    with FakeGrafana(dashboards=[{"uid": "hand", "title": "Hand made", "provisioned": False}]) as grafana:
        result = run_on_users_grafana(tmp_path, grafana, "-k", "provisioned_in_its_folder", "--timeout-scale", "0.02")
    failure = result.failure(PROVISIONED)
    assert "oke Grafana provisioning: no provisioned dashboard" in failure, result.output[-3000:]
    assert ("Grafana's providers provision no dashboard: 1 dashboards in /api/search?type=dash-db, none with "
            "meta.provisioned or meta.provisionedExternalId (expectation: the dashboards Grafana's providers "
            "provision") in failure
    assert "Grafana found at grafana/grafana:80" in failure


def test_a_user_s_provisioned_dashboards_are_the_expectation_and_their_panels_run(tmp_path):
    """Their own dashboard, not the project's (none of which this Grafana has): provisioned, so the check passes,
    and the report says what was expected and why."""
    dash = {"uid": "mine", "title": "My board", "folder": "Team", "file": "team/my-board.json",
            "panels": [{"title": "up", "targets": [{"expr": "up", "refId": "A"}]}]}
    with FakeGrafana(dashboards=[dash]) as grafana:
        result = run_on_users_grafana(tmp_path, grafana, "-k", "provisioned_in_its_folder")
    props = result.properties(PROVISIONED)
    assert props["outcome"] == "passed", result.output[-3000:]
    assert props["dashboards_provisioned"] == "1"
    assert props["dashboards_matched_by"] == "my-board: provisioned team/my-board.json"
    assert props["dashboards_expectation"].startswith("the dashboards Grafana's providers provision")


def test_a_listed_dashboard_not_provisioned_fails_naming_it(tmp_path):
    """`dashboards: [My board, Missing]`: My board is provisioned, Missing is only hand made: named, after the wait."""
    dashboards = [{"uid": "mine", "title": "My board", "folder": "Team", "file": "team/my-board.json"},
                  {"uid": "hand", "title": "Missing", "provisioned": False}]
    with FakeGrafana(dashboards=dashboards) as grafana:
        result = run_on_users_grafana(tmp_path, grafana, "-k", "provisioned_in_its_folder", "--timeout-scale", "0.02",
                                      dashboards=["My board", "Missing"])
    failure = result.failure(PROVISIONED)
    assert "oke Grafana provisioning: a listed dashboard not provisioned" in failure, result.output[-3000:]
    assert ("Grafana's providers provision no dashboard with the uid or title Missing (Missing present but not "
            "provisioned); 2 dashboards in /api/search?type=dash-db (expectation: the dashboards My board, Missing, "
            "each provisioned by Grafana's providers") in failure


def test_the_listed_dashboards_of_a_user_s_grafana_are_the_expectation(tmp_path):
    dashboards = [{"uid": "mine", "title": "My board", "folder": "Team", "file": "team/my-board.json"},
                  {"uid": "theirs", "title": "Other board", "folder": "Team", "file": "team/other.json"}]
    with FakeGrafana(dashboards=dashboards) as grafana:
        result = run_on_users_grafana(tmp_path, grafana, "-k", "provisioned_in_its_folder", dashboards=["mine"])
    props = result.properties(PROVISIONED)
    assert props["outcome"] == "passed", result.output[-3000:]
    assert props["dashboards_matched_by"] == "my-board: provisioned team/my-board.json"
