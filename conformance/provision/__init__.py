"""The kind bring-up: `python -m conformance.provision up|down` (issue 4).

versions -> tools -> preflight -> plan (ordered steps as data) -> run (progress,
trace.json) -> diagnostics on failure. Nothing runs on --dry-run.
"""
