"""The logs area: the log canary, the log agent's own account of its pushes, and the OpenSearch path."""
