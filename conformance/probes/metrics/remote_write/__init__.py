"""Remote write as the sending Prometheus sees it: its queue metrics, its configuration, and why series are missing.

One module per job: `sender` reads /metrics, `history` the sender's own scrapes of it, `config` reads the loaded configuration, `log` the sender's log,
`diagnosis` turns them into a clause for a failed check.
"""

from conformance.probes.metrics.remote_write.config import external_labels, parse_duration, scrape_interval_seconds
from conformance.probes.metrics.remote_write.history import Past, matching, past_snapshots
from conformance.probes.metrics.remote_write.diagnosis import explain_missing_series, retrying_undelivered, undelivered
from conformance.probes.metrics.remote_write.log import LogSource, describe_last_error, last_send_error
from conformance.probes.metrics.remote_write.sender import Queue, SenderSnapshot, sender_snapshot, snapshot_from_metrics

__all__ = ["LogSource", "Past", "Queue", "matching", "past_snapshots", "SenderSnapshot", "describe_last_error", "explain_missing_series", "external_labels",
           "last_send_error", "parse_duration", "retrying_undelivered", "scrape_interval_seconds", "sender_snapshot",
           "snapshot_from_metrics", "undelivered"]
