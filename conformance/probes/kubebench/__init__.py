"""The kube-bench part: per-node totals pushed to the Pushgateway."""
