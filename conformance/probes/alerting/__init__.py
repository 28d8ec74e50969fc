"""The alerting part: rule groups, the Watchdog alert, and why an alert did not arrive."""
