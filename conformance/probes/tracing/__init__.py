"""The tracing part: one forced-traced request's spans in Jaeger."""
