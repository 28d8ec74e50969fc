"""The core: topology, providers and access, the Kubernetes and HTTP transport, eventual assertions,
outcomes and hops. It imports nothing else of the suite."""
