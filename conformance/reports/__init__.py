"""Reports people read: JUnit for CI, summary.md, index.html, history.jsonl, and the upgrade comparison.

Every report is rendered from the post-processed reports/junit.xml (model.load_run),
so a report re-rendered later (after the diagnostics bundle exists) says the same.
"""
