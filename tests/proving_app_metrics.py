"""The app-metrics part on the proving ground: the fake example app scraped by the real Prometheus pair
under the scrape config prometheus-operator v0.93 generates from stack/app's ServiceMonitor.

generateServiceMonitorConfig (pkg/prometheus/promcfg.go): job_name serviceMonitor/<ns>/<name>/<index>, then
the relabelling that sets namespace, service, pod and container from discovery, job from the Service's name
and endpoint from the endpoint's port name. Without service discovery here, those labels are the target's.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from conformance.probes.app_metrics.series import app_metrics


def app_scrape_job(app_url: str, pod: str = "example-app-7d9f8b6c5d-x2x4q", service_port: str | None = None) -> dict:
    """The scrape config of the app's ServiceMonitor endpoint 0, aimed at app_url.

    service_port: the Service's port name as discovery would report it; the operator's keep rule on
    __meta_kubernetes_endpointslice_port_name then drops the target unless it is the endpoint's port.
    """
    app = app_metrics()
    labels = {"job": app.job, "namespace": app.namespace, "service": app.service, "endpoint": app.port,
              "pod": pod, "container": app.service}
    job = {"job_name": app.pool, "metrics_path": "/metrics",
           "static_configs": [{"targets": [urlsplit(app_url).netloc], "labels": labels}]}
    if service_port is not None:
        labels["__meta_kubernetes_endpointslice_port_name"] = service_port
        job["relabel_configs"] = [{"action": "keep", "source_labels": ["__meta_kubernetes_endpointslice_port_name"],
                                   "regex": app.port}]
    return job
