"""The Kiali area: what the primary's API server says of Kiali."""
