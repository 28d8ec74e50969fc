"""The app-metrics part on the proving ground: the fake example app scraped by the real Prometheus pair
under the scrape config prometheus-operator v0.93 generates from stack/app's ServiceMonitor.

generateServiceMonitorConfig (pkg/prometheus/promcfg.go): job_name serviceMonitor/<ns>/<name>/<index>, then
the relabelling that sets namespace, service, pod and container from discovery, job from the Service's name
and endpoint from the endpoint's port name. Without service discovery here, those labels are the target's.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from conformance.app_metrics import app_metrics


def app_scrape_job(app_url: str, pod: str = "example-app-7d9f8b6c5d-x2x4q") -> dict:
    """The scrape config of the app's ServiceMonitor endpoint 0, aimed at app_url."""
    app = app_metrics()
    labels = {"job": app.job, "namespace": app.namespace, "service": app.service, "endpoint": app.port,
              "pod": pod, "container": app.service}
    return {"job_name": app.pool, "metrics_path": "/metrics",
            "static_configs": [{"targets": [urlsplit(app_url).netloc], "labels": labels}]}
