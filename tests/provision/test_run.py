"""The runner: bounded waits with progress, parallel groups, trace.json, redaction; the CLI's one-line errors."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from conformance.provision import cli
from conformance.provision.redact import Redactor
from conformance.provision.run import Runner, StepFailed
from conformance.provision.steps import Facts, Step, When

PY = sys.executable


def runner(tmp_path, **kw) -> tuple[Runner, io.StringIO]:
    out = io.StringIO()
    return Runner({}, tmp_path / "trace.json", out=out, **kw), out


def test_a_bounded_wait_retries_until_ready_and_reports_attempts(tmp_path):
    counter = tmp_path / "n"
    # Ready on the third attempt: prints nothing twice, then an address.
    script = (f"import pathlib; p=pathlib.Path({str(counter)!r}); n=int(p.read_text() or 0) if p.exists() else 0; "
              "p.write_text(str(n+1)); print('172.18.255.230' if n >= 2 else '')")
    r, out = runner(tmp_path)
    r.run([Step("mesh", "oke", "gateway address", (PY, "-c", script), timeout=10, retry=True, poll=0.01,
                capture="oke.ip", ready=lambda o: bool(o.strip()), waits_for="MetalLB address")])
    assert r.facts["oke.ip"] == "172.18.255.230"
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert trace["steps"][0]["attempts"] == 3 and trace["result"] == "ok"
    assert "▶ [mesh] oke: gateway address — waiting for MetalLB address" in out.getvalue()


def test_a_wait_that_never_converges_fails_within_its_bound_with_the_last_state(tmp_path):
    r, _ = runner(tmp_path)
    with pytest.raises(StepFailed) as e:
        r.run([Step("stack", "oke", "address of Loki", (PY, "-c", "print('')"), timeout=0.3, retry=True, poll=0.05,
                    ready=lambda o: bool(o.strip()))])
    assert "not ready after 0s" in e.value.diagnosis or "not ready after" in e.value.diagnosis
    assert e.value.where == "stack oke: address of Loki"


def test_a_first_look_slower_than_the_bound_still_answers(tmp_path):
    """A loaded machine may start a CLI slower than a short bound: the first look is not cut off before it answers."""
    r, _ = runner(tmp_path)
    with pytest.raises(StepFailed) as e:
        r.run([Step("mesh", "oke", "synced", (PY, "-c", "import time; time.sleep(0.6); print('syncing')"),
                    timeout=0.2, retry=True, poll=0.05, ready=lambda o: "synced" == o.strip(),
                    state=lambda o: f"shows {o.strip()}")])
    assert e.value.diagnosis == "not ready after 0s (1 attempts; last: shows syncing)"


def test_a_look_cut_off_at_the_bound_keeps_the_last_state_answered(tmp_path):
    counter = tmp_path / "n"
    # Answers "syncing" at once, then hangs past the bound.
    script = (f"import pathlib, time; p=pathlib.Path({str(counter)!r}); n=p.exists(); p.write_text('1'); "
              "time.sleep(30 if n else 0); print('syncing')")
    r, _ = runner(tmp_path)
    with pytest.raises(StepFailed) as e:
        r.run([Step("mesh", "oke", "synced", (PY, "-c", script), timeout=4, retry=True, poll=0.05,
                    ready=lambda o: "synced" == o.strip(), state=lambda o: f"shows {o.strip()}")])
    assert e.value.diagnosis.startswith("not ready after 4s (2 attempts; last: shows syncing; the next look was "
                                        "timed out after "), e.value.diagnosis


def test_a_hung_command_is_killed_at_its_timeout(tmp_path):
    r, _ = runner(tmp_path)
    with pytest.raises(StepFailed, match="timed out after"):
        r.run([Step("clusters", "oke", "hangs", (PY, "-c", "import time; time.sleep(30)"), timeout=0.5)])


def test_progress_lines_show_phase_cluster_wait_and_elapsed(tmp_path):
    r, out = runner(tmp_path, progress_every=0.05)
    r.run([Step("stack", "oke", "install", (PY, "-c", "import time; time.sleep(0.3)"), timeout=5,
                waits_for="Prometheus Ready")])
    assert "  … [stack] oke: Prometheus Ready: 0s of at most 5s" in out.getvalue()


# Each step marks that it runs, then waits for the other's mark: only steps running side by side both finish.
RENDEZVOUS = """import pathlib, sys, time
here, other = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
here.touch()
deadline = time.monotonic() + 30
while not other.exists():
    if time.monotonic() > deadline:
        sys.exit("the other step never ran alongside")
    time.sleep(0.05)
"""


def test_parallel_group_runs_together(tmp_path):
    """The evidence is each step seeing the other run, not a wall-clock margin a loaded machine could miss."""
    r, _ = runner(tmp_path)
    mark = {n: str(tmp_path / f"{n}.running") for n in ("oke", "workstation")}
    other = {"oke": mark["workstation"], "workstation": mark["oke"]}
    r.run([Step("clusters", n, "create", (PY, "-c", RENDEZVOUS, mark[n], other[n]), timeout=60, parallel="create")
           for n in ("oke", "workstation")])
    assert all(Path(m).exists() for m in mark.values())


def test_trace_has_phase_durations_and_skips(tmp_path):
    r, _ = runner(tmp_path)
    r.run([Step("clusters", "oke", "noop", (PY, "-c", "pass")),
           Step("clusters", "oke", "skipped", (PY, "-c", "pass"), when=When("never", lambda f: False))])
    trace = json.loads((tmp_path / "trace.json").read_text())
    assert set(trace["phases"]) == {"clusters/oke"}
    assert [s["status"] for s in trace["steps"]] == ["ok", "skipped"]


def test_tolerated_stderr_counts_as_done(tmp_path):
    r, _ = runner(tmp_path)
    script = "import sys; sys.stderr.write('Error from server (AlreadyExists): namespaces \"istio-system\" already exists'); sys.exit(1)"
    r.run([Step("mesh", "workstation", "ns", (PY, "-c", script), tolerate=("AlreadyExists",))])


def test_secret_output_is_never_printed_traced_or_in_a_failure(tmp_path):
    secret = "c2VjcmV0LWNsaWVudC1rZXktZGF0YS1wbGFudGVk"
    r, out = runner(tmp_path)
    steps = [Step("clusters", "oke", "kubeconfig", (PY, "-c", f"print('client-key-data: {secret}')"), secret=True,
                  capture="oke.kc"),
             Step("clusters", "oke", "echo", (PY, "-c", f"import sys; sys.stderr.write('bad {secret}'); sys.exit(2)"))]
    with pytest.raises(StepFailed) as e:
        r.run(steps)
    assert secret not in e.value.diagnosis and secret not in out.getvalue()
    assert secret not in (tmp_path / "trace.json").read_text()


@pytest.mark.parametrize("text,hidden", [
    ("token: abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz"),
    ("Authorization: Bearer s3cr3t-value-123", "s3cr3t-value-123"),
    ("GF_SECURITY_ADMIN_PASSWORD=hunter2hunter2", "hunter2hunter2"),
    ('{"admin-password": "p4ss-w0rd-x"}', "p4ss-w0rd-x"),
    ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBhcnQ", "eyJhbGciOiJSUzI1NiJ9"),
])
def test_redaction_patterns(text, hidden):
    assert hidden not in Redactor(Facts())(text)


def test_redaction_keeps_ordinary_text():
    text = "kiali-service-account-token created; server https://172.18.0.3:6443"
    assert Redactor(Facts())(text) == text


def test_bad_topology_is_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("clusters:\n  - name: oke\n    role: primary\n    provider: kind\n    colour: blue\n")
    out = io.StringIO()
    assert cli.main(["up", "--topology", str(bad), "--dry-run"], out=out) == 2
    assert out.getvalue().count("\n") == 1 and "colour: unknown key" in out.getvalue()


def test_mixed_topology_is_refused_with_the_reason(tmp_path):
    mixed = tmp_path / "t.yaml"
    mixed.write_text("clusters:\n  - {name: oke, role: primary, provider: kind}\n"
                     "  - {name: workstation, role: remote, provider: existing, context: ctx}\n")
    out = io.StringIO()
    assert cli.main(["up", "--topology", str(mixed), "--dry-run"], out=out) == 2
    assert "creates kind clusters only; workstation (existing)" in out.getvalue()


def test_no_kind_clusters_means_nothing_to_do(tmp_path):
    topo = tmp_path / "t.yaml"
    topo.write_text("clusters:\n  - {name: oke, role: primary, provider: existing, context: ctx}\n")
    out = io.StringIO()
    assert cli.main(["up", "--topology", str(topo)], out=out) == 0
    assert "nothing to do" in out.getvalue()


def test_the_conformance_run_splits_bringup_options_from_pytest_arguments():
    from conformance.cli import split_arguments
    args = split_arguments(["--keep", "-k", "logs", "--topology=t.yaml", "--offline", "dash", "--preload", "-x"])
    assert args.topology == "t.yaml"
    assert args.bringup == ["--keep", "--offline", "dash", "--preload"]
    assert args.pytest == ["-k", "logs", "--topology=t.yaml", "-x"]


def test_each_diagnostics_command_has_its_own_timeout():
    from conformance.provision.diagnostics import Probe, _run
    started = __import__("time").monotonic()
    text = _run(Probe("x.txt", (PY, "-c", "import time; time.sleep(30)"), timeout=0.3), {})
    assert "(timed out after 0s" in text
    assert __import__("time").monotonic() - started < 5


def test_secret_yaml_data_is_blanked():
    from conformance.provision.redact import redact_secret_data
    text = "kind: Secret\ndata:\n  token: ZXlKaGJHY2lPaUpTVXpJMU5pSjk=\n  ca.crt: LS0t\nmetadata:\n  name: x\n"
    out = redact_secret_data(text)
    assert "ZXlKaGJHY2lPaUpTVXpJMU5pSjk=" not in out and "name: x" in out
