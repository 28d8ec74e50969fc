"""Redaction of secrets from anything the bring-up prints or writes (output, trace.json, diagnostics)."""

from __future__ import annotations

import re

from conformance.provision.steps import Facts

# Shapes of credentials in kubectl/helm/istioctl output, whatever their origin.
PATTERNS = (
    # JWTs: service-account tokens.
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    # kubeconfig and Secret fields whose value is a credential.
    re.compile(r"(?i)((?:client-key-data|client-certificate-data|token|password|admin-password|secret|"
               r"bearer|authorization|ca\.crt|tls\.key|tls\.crt)[\"']?\s*[:=]\s*[\"']?(?:Bearer\s+)?)[^\s\"',}]+"),
    re.compile(r"(?i)(Authorization:\s*(?:Bearer|Basic)\s+)\S+"),
    # GF_SECURITY_ADMIN_PASSWORD and similar env values in `describe` output.
    re.compile(r"(?i)(PASSWORD[A-Z_]*\s*[:=]\s*)\S+"),
)
MASK = "<redacted>"


class Redactor:
    """Masks every secret registered in the facts plus credential-shaped text."""

    def __init__(self, facts: Facts):
        self.facts = facts

    def __call__(self, text: str) -> str:
        for secret in sorted(self.facts.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        for pattern in PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
        return text


def redact_secret_data(text: str) -> str:
    """Blank the `data:`/`stringData:` blocks of Secret YAML (values are base64 credentials)."""
    out, skipping, indent = [], False, 0
    for line in text.splitlines():
        stripped = line.lstrip()
        cur = len(line) - len(stripped)
        if skipping and stripped and cur > indent:
            out.append(" " * cur + MASK)
            continue
        skipping = False
        if stripped in ("data:", "stringData:"):
            skipping, indent = True, cur
        out.append(line)
    return "\n".join(out)
