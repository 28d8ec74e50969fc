"""Keep secrets out of output, reports and diagnostics."""

from __future__ import annotations

import re
import threading

MASK = "***"

_known: set[str] = set()
_lock = threading.Lock()

# Shapes of credentials that may show up in text we did not produce ourselves.
_PATTERNS = [
    (re.compile(r"(?i)(authorization:\s*(?:bearer|basic)\s+)\S+"), r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"), MASK),  # JWTs (service-account tokens)
    (re.compile(r"(?i)((?:password|passwd|token|secret|client-key-data|client-certificate-data|tls\.key|tls\.crt|ca\.crt)"
                r"[\"']?\s*[:=]\s*[\"']?(?:Bearer\s+)?)[^\s\"',}]+"), r"\1" + MASK),
    (re.compile(r"(?i)(PASSWORD[A-Z_]*\s*[:=]\s*)\S+"), r"\1" + MASK),  # GF_SECURITY_ADMIN_PASSWORD=... in describe output
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), r"\1" + MASK + "@"),  # user:password@ in URLs
]


def register_secret(value: str | None) -> None:
    """Remember a secret value so redact() masks it wherever it appears."""
    if value and len(value) >= 4:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    """Mask registered secrets and credential-shaped strings in text."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_secret_data(text: str) -> str:
    """Mask the values under `data:`/`stringData:` of Secret YAML (base64 credentials)."""
    out, skipping, indent = [], False, 0
    for line in text.splitlines():
        stripped = line.lstrip()
        depth = len(line) - len(stripped)
        if skipping and stripped and depth > indent:
            out.append(" " * depth + MASK)
            continue
        skipping = False
        if stripped in ("data:", "stringData:"):
            skipping, indent = True, depth
        out.append(line)
    return "\n".join(out)
