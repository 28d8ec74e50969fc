"""Remote write as the sending Prometheus sees it: its queue metrics, its configuration, and why series are missing.

One module per job: `sender` reads /metrics, `config` reads the loaded configuration,
`diagnosis` turns both into a clause for a failed check.
"""

from conformance.remote_write.config import external_labels, parse_duration, scrape_interval_seconds
from conformance.remote_write.diagnosis import explain_missing_series
from conformance.remote_write.sender import Queue, SenderSnapshot, sender_snapshot, snapshot_from_metrics

__all__ = ["Queue", "SenderSnapshot", "explain_missing_series", "external_labels", "parse_duration",
           "scrape_interval_seconds", "sender_snapshot", "snapshot_from_metrics"]
