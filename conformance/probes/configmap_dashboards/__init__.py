"""The configmap-dashboards part: a labelled ConfigMap and Grafana's sidecar."""
