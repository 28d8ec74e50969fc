"""The events part: a Kubernetes Event on its way to the primary Loki."""
