"""What the checks read, one package per area. Probes import the core and the service clients only."""
