"""The bring-up\x27s phases, in the order `up` runs them: clusters, preload, network and mesh, stack and app."""
