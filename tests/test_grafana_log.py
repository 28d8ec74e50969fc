"""Reading Grafana's log loosely: pass lines, rejected files, duplicate uids, datasource errors, in each log format."""

from __future__ import annotations

from conformance.probes.dashboards.grafana_log import datasource_cause, last_pass, specific_part

START = 'logger=provisioning.dashboard t=2026-01-01T00:00:00Z level=info msg="starting to provision dashboards"'
END = 'logger=provisioning.dashboard t=2026-01-01T00:00:01Z level=info msg="finished to provision dashboards"'
REJECTED = ('logger=provisioning.dashboard type=file name=istio t=2026-01-01T00:00:00Z level=error '
            'msg="failed to load dashboard from " file=/var/lib/grafana/dashboards/istio/istio-mesh.json '
            'error="invalid character \'<\' looking for beginning of value"')
DUPLICATE = ('logger=provisioning.dashboard t=2026-01-01T00:00:00Z level=warn msg="the same UID is used more than once" '
             'orgId=1 uid=abc times=2 providers="[istio logs]"')


def test_a_completed_pass_is_told_from_one_under_way():
    assert last_pass([START, REJECTED, END]).completed
    running = last_pass([START, END, START, REJECTED])
    assert running.started and not running.completed and running.starts == 2
    assert not last_pass([REJECTED]).started  # no pass line: the whole log, never completed (the check waits)


def test_rejected_files_and_duplicate_uids_of_the_last_pass_only():
    old_pass = [START, REJECTED, END]
    assert last_pass(old_pass).rejected == {"istio-mesh.json": ("/var/lib/grafana/dashboards/istio/istio-mesh.json",
                                                                "invalid character '<' looking for beginning of value")}
    assert last_pass(old_pass + [START, END]).rejected == {}
    assert last_pass([START, DUPLICATE, END]).duplicate_uids == {"abc": "istio logs"}


def test_the_json_format_and_grafana_5s_wording_are_read_too():
    json_line = ('{"logger":"provisioning.dashboard","level":"error","msg":"failed to load dashboard from ",'
                 '"file":"/d/x.json","error":"Dashboard title cannot be empty"}')
    assert last_pass([json_line]).rejected == {"x.json": ("/d/x.json", "Dashboard title cannot be empty")}
    grafana5 = 'lvl=eror msg="the same \'uid\' is used more than once" logger=provisioning.dashboard uid=u1 provider=p'
    assert last_pass([grafana5]).duplicate_uids == {"u1": "p"}


def test_a_datasource_cause_is_the_last_error_naming_it():
    lines = ['logger=tsdb.loki dsName=Loki dsUID=loki level=error msg="Error received from Loki" error="first"',
             'logger=tsdb.loki dsName=Other dsUID=other level=error msg="Error received from Loki" error="not ours"',
             'logger=tsdb.loki dsName=Loki dsUID=loki level=warn msg="error performing loki healthcheck" err="last"']
    assert datasource_cause(lines, "loki", "Loki") == "last"
    assert datasource_cause(lines[:1], "nope", "Nope") is None


def test_generic_health_answers_name_no_cause():
    assert specific_part("Plugin health check failed") == ""
    assert specific_part("Unable to connect with Loki. Please check the server logs for more details.") == ""
    assert specific_part("There was an error returned querying the Loki API.") == ""
    assert "unexpected IDENTIFIER" in specific_part(
        "There was an error returned querying the Loki API.: parse error at line 1, col 10: syntax error: unexpected IDENTIFIER")
