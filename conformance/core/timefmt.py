"""Times as the servers print them."""

from __future__ import annotations

import re
from datetime import datetime

_RFC3339 = re.compile(r"(?P<base>[^.]+?)(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d\d:\d\d)")


def rfc3339_seconds(raw: str) -> float:
    """Epoch seconds of an RFC 3339 time with any fraction length (Go prints up to 9 digits); 0 for Go's zero time."""
    if not raw or raw.startswith("0001-01-01"):
        return 0.0
    m = _RFC3339.fullmatch(raw)
    if m is None:
        raise ValueError(f"not an RFC 3339 time: {raw!r}")
    base = datetime.fromisoformat(m["base"] + m["zone"].replace("Z", "+00:00"))
    return base.timestamp() + float("0." + (m["fraction"] or "0"))
