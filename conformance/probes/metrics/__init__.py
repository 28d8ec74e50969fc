"""The metrics area: where a cluster's series live, the Prometheus resource's intent, remote write."""
