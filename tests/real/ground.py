"""A proving ground's life in a network namespace of its own, for the fixtures of the self-tests that use one."""

from __future__ import annotations

import time
from typing import Callable, Iterable, Iterator, Protocol, TypeVar

import pytest

import tests.real as real
from tests.real import netns


class Stoppable(Protocol):
    """A ground: anything that stops what it started."""

    def stop(self) -> None: ...


G = TypeVar("G", bound=Stoppable)


def require_namespace(binaries: Iterable[str]) -> None:
    """Skip saying why when this machine cannot make a namespace or lacks one of the binaries (failed under CI=true)."""
    why = netns.available()
    if why:
        if real.in_ci():
            pytest.fail(f"CI=true: {why}", pytrace=False)
        pytest.skip(why)
    for name in binaries:
        real.require(name)


def in_namespace(start: Callable[[netns.NetNamespace], G], binaries: Iterable[str], addresses: Iterable[str]) -> Iterator[G]:
    """After require_namespace(binaries): yield start(ns) in a new namespace over addresses, then stop it and check
    nothing it started outlived it."""
    require_namespace(binaries)
    ns = netns.NetNamespace(list(addresses))
    try:
        g = start(ns)
        try:
            yield g
        finally:
            g.stop()
        left = outliving(ns.id)
        assert not left, f"something started in the proving ground outlived it: {left}"
    finally:
        ns.close()


def outliving(ns_id: str, grace: float = 10.0) -> list[str]:
    """What still has a thread in the namespace once a stopped process (or a thread of this one) had `grace` seconds to
    end: each as 'pid: command line [thread names]', empty when nothing did."""
    deadline = time.monotonic() + grace
    while netns.holders(ns_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    return [netns.describe(pid, ns_id) for pid in netns.holders(ns_id)]
