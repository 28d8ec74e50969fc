"""The targets check against a real Prometheus whose scrape pools and job labels mirror the stack's."""

from __future__ import annotations

from contextlib import contextmanager


from conformance.probes.platform.scrape_jobs import required_jobs
from tests.fakes.envoy import FakeEnvoy
from tests.fakes.exporter import FakeExporter
from tests.proving_ground import free_port, start_prometheus
from tests.proving_stack import stack_scrape_jobs
from tests.suite_runner import run_suites, write_topology

TARGETS = "suites.test_platform::test_every_prometheus_target_is_up[oke]"


@contextmanager
def primary_prometheus(tmp_path, extra_jobs=(), **jobs_options):
    """One real Prometheus (the primary) scraping a FakeExporter and a sidecar under the stack's job names."""
    with FakeExporter() as exporter, FakeEnvoy() as envoy:
        jobs = stack_scrape_jobs("primary", exporter.url, [envoy.url], **jobs_options) + list(extra_jobs)
        prometheus = start_prometheus("primary", tmp_path / "p", cluster="oke", receiver=True, scrape_jobs=jobs)
        try:
            prometheus.wait_for_targets(sum(bool(j["static_configs"][0]["targets"]) for j in jobs) + 1)
            yield prometheus
        finally:
            prometheus.stop()


def run_platform(tmp_path, prometheus, *args, stack: str | None = "bring-up"):
    """The project's own stack by default (stack: bring-up); stack=None: a user's, given only by URL."""
    topo = write_topology(tmp_path, [{"name": "oke", "role": "primary", "provider": "endpoints",
                                      **({"stack": stack} if stack else {}), "services": {"prometheus": prometheus.url}}])
    return run_suites(tmp_path, "--topology", str(topo), "-m", "platform", "-k", "target", *args)


def test_required_jobs_follow_the_values_of_each_role():
    """Chart defaults merged with each values file: Grafana and istiod only where the bring-up installs them."""
    primary = {j.job for j in required_jobs("primary")}
    remote = {j.job for j in required_jobs("remote")}
    control_plane = {"apiserver", "kubelet", "coredns", "kube-controller-manager", "kube-scheduler", "kube-etcd",
                     "kube-proxy", "node-exporter", "kube-state-metrics", "kube-prometheus-stack-operator",
                     "kube-prometheus-stack-prometheus", "monitoring/envoy-stats"}
    assert primary == control_plane | {"kube-prometheus-stack-grafana", "istiod"}
    assert remote == control_plane  # grafana.enabled: false in the remote values
    assert "kube-prometheus-stack-alertmanager" not in primary  # alertmanager.enabled: false in both files
    assert "kube-dns" not in primary  # kubeDns.enabled defaults to false (coreDns is on)


def test_required_jobs_are_derived_not_listed(tmp_path):
    """Turning a switch off in a values file drops that job; the check has no list of its own."""
    values = tmp_path / "values.yaml"
    values.write_text("kubeEtcd:\n  enabled: false\ngrafana:\n  enabled: false\nalertmanager:\n  enabled: true\n")
    jobs = {j.job for j in required_jobs("primary", values)}
    assert "kube-etcd" not in jobs and "kube-prometheus-stack-grafana" not in jobs
    assert "kube-prometheus-stack-alertmanager" in jobs


def test_healthy_stack_targets_pass_and_name_the_required_jobs(tmp_path):
    with primary_prometheus(tmp_path) as prometheus:
        run = run_platform(tmp_path, prometheus)
    assert run.code == 0, run.output
    props = run.properties(TARGETS)
    assert set(props["required_jobs"].split(",")) == {j.job for j in required_jobs("primary")}
    assert props["targets_down"] == "0" and props["other_targets_down"] == "0"


def test_a_required_job_down_fails_with_its_last_error(tmp_path):
    """kube-etcd bound on 127.0.0.1 (kind's kubeadm default): refused, named with the fix."""
    closed = f"http://127.0.0.1:{free_port()}"
    with primary_prometheus(tmp_path, urls={"kube-etcd": closed}) as prometheus:
        run = run_platform(tmp_path, prometheus)
    failure = run.failure(TARGETS)
    assert "oke Prometheus → its scrape targets: 1 of 15 targets of required jobs down (jobs: kube-etcd)" in failure
    assert f"job kube-etcd (serviceMonitor/monitoring/kube-prometheus-stack-kube-etcd/0) {closed}/kube-etcd/metrics: down" in failure
    assert "connection refused" in failure
    assert "kube-etcd listens on 127.0.0.1 on kind unless kind/*.yaml binds it on 0.0.0.0" in failure
    assert run.properties(TARGETS)["outcome"] == "failed"


def test_a_users_own_monitor_down_is_reported_without_failing(tmp_path):
    """A target outside the stack's jobs: listed with its lastError, as a property and a warning; the must holds."""
    closed = free_port()
    mine = {"job_name": "serviceMonitor/default/my-app/0", "relabel_configs": [{"target_label": "job", "replacement": "my-app"}],
            "static_configs": [{"targets": [f"127.0.0.1:{closed}"]}]}
    with primary_prometheus(tmp_path, extra_jobs=[mine]) as prometheus:
        run = run_platform(tmp_path, prometheus)
    assert run.code == 0, run.output
    props = run.properties(TARGETS)
    assert props["targets_down"] == "0" and props["other_targets_down"] == "1"
    assert f"job my-app (serviceMonitor/default/my-app/0) http://127.0.0.1:{closed}/metrics: down" in props["other_targets_down_detail"]
    assert "connection refused" in props["other_targets_down_detail"]
    assert "1 targets outside the stack's jobs are down" in run.output  # pytest's warnings summary


def test_a_required_job_the_configuration_lacks_fails_at_once_naming_it(tmp_path):
    """No kube-proxy pool in the configuration Prometheus loaded (its monitor unselected): no wait brings one."""
    with primary_prometheus(tmp_path, omit=("kube-proxy",)) as prometheus:
        run = run_platform(tmp_path, prometheus)  # at the real timeouts: 75 s if it waited
    failure = run.failure(TARGETS)
    assert ("oke Prometheus → its scrape targets: the configuration oke Prometheus loaded has no scrape pool for "
            "kube-proxy (serviceMonitor/monitoring/kube-prometheus-stack-kube-proxy): their monitors are not selected") in failure
    assert "kube-proxy: required by kube-prometheus-stack values (kube-prometheus-stack.yaml)" in failure
    assert run.properties(TARGETS)["outcome"] == "precondition"
    assert run.suite_seconds < 15


def test_a_required_job_without_targets_times_out_naming_it(tmp_path):
    """The kube-proxy pool is configured but has no target (its Service has no endpoints): the wait names the job."""
    with primary_prometheus(tmp_path, empty=("kube-proxy",)) as prometheus:
        run = run_platform(tmp_path, prometheus, "--timeout-scale", "0.05")
    failure = run.failure(TARGETS)
    assert "oke Prometheus → its scrape targets: required jobs not all scraped after" in failure
    assert "no targets yet for required jobs kube-proxy (serviceMonitor/monitoring/kube-prometheus-stack-kube-proxy)" in failure
    assert run.properties(TARGETS)["outcome"] == "timed_out"


USERS = "the jobs of the configuration oke Prometheus loaded (the topology gives oke Prometheus's URL and no stack: key"


def test_a_users_stack_given_by_url_expects_the_jobs_its_prometheus_loaded(tmp_path):
    """No stack: key and a URL: not this project's values (kube-proxy unconfigured is the user's choice), the jobs of
    the loaded configuration, each up; the report says where the expectation came from."""
    with primary_prometheus(tmp_path, omit=("kube-proxy",)) as prometheus:
        run = run_platform(tmp_path, prometheus, stack=None)
    assert run.code == 0, run.output
    props = run.properties(TARGETS)
    assert props["required_jobs_from"].startswith(USERS), props["required_jobs_from"]
    assert "serviceMonitor/monitoring/kube-prometheus-stack-kube-proxy/0" not in props["required_jobs"].split(",")
    assert "serviceMonitor/monitoring/kube-prometheus-stack-kubelet/0" in props["required_jobs"].split(",")


def test_a_users_loaded_job_down_fails_saying_where_the_expectation_came_from(tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    with primary_prometheus(tmp_path, urls={"kube-etcd": closed}) as prometheus:
        run = run_platform(tmp_path, prometheus, stack=None)
    failure = run.failure(TARGETS)
    assert ("oke Prometheus → its scrape targets: 1 of 15 targets of required jobs down (jobs: "
            "serviceMonitor/monitoring/kube-prometheus-stack-kube-etcd/0)") in failure
    assert f"{closed}/kube-etcd/metrics: down" in failure and "connection refused" in failure
    assert f"required jobs from {USERS}" in failure


def test_a_users_prometheus_that_scrapes_nothing_is_not_a_pass(tmp_path):
    """Nothing configured, nothing required: said at once, not passed by construction."""
    prometheus = start_prometheus("primary", tmp_path / "p", cluster="oke", receiver=True, scrape_jobs=[], self_scrape=False)
    try:
        run = run_platform(tmp_path, prometheus, stack=None)
    finally:
        prometheus.stop()
    failure = run.failure(TARGETS)
    assert ("oke Prometheus → its scrape targets: oke Prometheus is configured to scrape nothing: no job is required "
            f"(required jobs from {USERS}") in failure
    assert run.properties(TARGETS)["outcome"] == "precondition"
