"""The pytest plugins: arguments, topology, parametrization, hops, progress and the reports' hooks."""
