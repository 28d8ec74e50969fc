"""A context variable set for the length of a with-block: how a caller scopes a setting to what it calls."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, TypeVar

T = TypeVar("T")


@contextmanager
def set_within(var: ContextVar[T], value: T) -> Iterator[None]:
    """Inside the block `var` holds `value`; after it, what it held before (an exception included)."""
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)
