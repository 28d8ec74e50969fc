"""Redaction for the bring-up: the secrets it learned (facts) plus everything conformance.core.redact masks."""

from __future__ import annotations

from conformance.provision.steps import Facts
from conformance.core.redact import MASK, redact, redact_secret_data

__all__ = ["MASK", "Redactor", "redact_secret_data"]


class Redactor:
    """Masks every secret registered in the facts, then credential-shaped text."""

    def __init__(self, facts: Facts):
        self.facts = facts

    def __call__(self, text: str) -> str:
        for secret in sorted(self.facts.secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return redact(text)
