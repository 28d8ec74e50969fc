"""httpx's one-call API (get, post, put, delete) for the harness, with one TLS context for them all.

Each httpx.get makes a client, and each client read the CA bundle again: ~65 ms of CPU a call (encode/httpx#838),
the most of a worker's CPU where a harness polls a server several times a second. An explicit verify= still wins.
"""

from __future__ import annotations

from typing import Any

import httpx

from conformance.core.http import default_tls


def get(url: str, **options: Any) -> httpx.Response:
    return httpx.get(url, **{"verify": default_tls(), **options})


def post(url: str, **options: Any) -> httpx.Response:
    return httpx.post(url, **{"verify": default_tls(), **options})


def put(url: str, **options: Any) -> httpx.Response:
    return httpx.put(url, **{"verify": default_tls(), **options})


def delete(url: str, **options: Any) -> httpx.Response:
    return httpx.delete(url, **{"verify": default_tls(), **options})
