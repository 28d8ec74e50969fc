"""The dashboards area: which dashboards Grafana should have, and their panels run as on load."""
