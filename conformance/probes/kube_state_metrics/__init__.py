"""The kube-state-metrics part: its scrape target and the state canary's series."""
