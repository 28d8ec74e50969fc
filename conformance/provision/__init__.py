"""The kind bring-up: `python -m conformance.provision up|down` (issue 4).

versions -> tools -> preflight -> plan (ordered steps as data: commands, then one module per phase under
phases/, with no import back up) -> run (progress, trace.json) -> diagnostics on failure. Nothing runs on --dry-run.
"""
