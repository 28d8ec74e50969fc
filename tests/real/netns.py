"""A network namespace of the test's own, entered only for as long as a `with ns:` block lasts.

Linux keeps the network namespace per thread: inside the block, the processes this thread starts, the threads
it starts and the sockets it opens live in the namespace, and stay there after the block ends. Other threads
(pytest's, xdist's) and the rest of the machine never see it. The namespace disappears with its last process,
socket and file descriptor, so close() after stopping what was started inside leaves nothing behind.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import threading

CLONE_NEWNET = 0x40000000  # <linux/sched.h>
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsUnavailable(Exception):
    """This process may not create a network namespace (not root, or not Linux)."""


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise NetnsUnavailable(f"{what}: {os.strerror(err)} (needs root on Linux, as `unshare -n` does)")


def _thread_ns_path() -> str:
    return f"/proc/self/task/{threading.get_native_id()}/ns/net"


def current() -> str:
    """The calling thread's namespace (net:[4026531840]), to prove where it is."""
    return os.readlink(_thread_ns_path())


def available() -> str | None:
    """None when a namespace can be made here, else why not (one line)."""
    if not os.path.exists("/proc/self/ns/net"):
        return "the proving ground's network namespace needs Linux"
    if os.getuid() != 0:
        return "the proving ground's network namespace needs root (as `unshare -n` does; CI runs as root)"
    return None


class NetNamespace:
    """A fresh namespace with `lo` up and the given /32 addresses on it; `with ns:` runs the block inside."""

    def __init__(self, addresses: list[str]) -> None:
        why = available()
        if why:
            raise NetnsUnavailable(why)
        self.addresses = addresses
        home = os.open(_thread_ns_path(), os.O_RDONLY)
        self._fd: int | None = None
        try:
            _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
            try:
                self.id = current()
                self._fd = os.open(_thread_ns_path(), os.O_RDONLY)
                subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True, timeout=10)
                for address in addresses:
                    subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True,
                                   capture_output=True, timeout=10)
            finally:
                _check(_libc.setns(home, CLONE_NEWNET), "setns back to the original namespace")
        except BaseException:
            self.close()
            raise
        finally:
            os.close(home)
        self._home: list[int] = []

    def __enter__(self) -> "NetNamespace":
        if self._fd is None:
            raise NetnsUnavailable("the namespace was closed")
        self._home.append(os.open(_thread_ns_path(), os.O_RDONLY))
        _check(_libc.setns(self._fd, CLONE_NEWNET), "setns into the proving ground's namespace")
        return self

    def __exit__(self, *exc: object) -> None:
        home = self._home.pop()
        try:
            _check(_libc.setns(home, CLONE_NEWNET), "setns back to the original namespace")
        finally:
            os.close(home)

    def close(self) -> None:
        """Drop our handle: the namespace goes once nothing started inside is left."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def describe(pid: int, ns_id: str) -> str:
    """'pid: command line [names of its threads in namespace ns_id]', for a message."""
    try:
        command = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace").strip()[:160]
        threads = []
        for tid in os.listdir(f"/proc/{pid}/task"):
            if os.readlink(f"/proc/{pid}/task/{tid}/ns/net") == ns_id:
                threads.append(open(f"/proc/{pid}/task/{tid}/comm").read().strip())
    except OSError:
        return f"{pid}: (gone)"
    return f"{pid}: {command} [{', '.join(threads)}]"


def holders(ns_id: str) -> list[int]:
    """Pids with a thread in namespace ns_id: empty once everything started inside has stopped."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                if os.readlink(f"/proc/{pid}/task/{tid}/ns/net") == ns_id:
                    pids.append(int(pid))
                    break
            except OSError:
                continue
    return pids
