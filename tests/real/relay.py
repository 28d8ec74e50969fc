"""A TCP relay from a pod's address to a server that listens on loopback only, as a pod's port would be.

The real API server proxies only to Endpoints that are not loopback (ValidateEndpointIP) and belong to a pod
with that IP; the fakes and the Prometheus pair listen on 127.0.0.1. A relay listens on the pod's address
(inside the test's network namespace) and copies bytes both ways, unchanged.
"""

from __future__ import annotations

import selectors
import socket
import threading


class Relay:
    """Listen on (host, port); each connection is piped to target. stop() closes everything."""

    def __init__(self, host: str, port: int, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server((host, port))
        self._listener.settimeout(0.5)
        self.address = self._listener.getsockname()[:2]
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name=f"relay-{host}:{port}", daemon=True)

    def start(self) -> "Relay":
        self._thread.start()
        return self

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()  # the server is down: the caller sees the connection refused/reset, as it would
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        for s in (a, b):
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        peer = {a: b, b: a}
        try:
            while not self._stopping.is_set():
                for key, _ in sel.select(0.5):
                    try:
                        data = key.fileobj.recv(65536)
                    except BlockingIOError:
                        continue
                    if not data:
                        return
                    peer[key.fileobj].setblocking(True)
                    peer[key.fileobj].sendall(data)
                    peer[key.fileobj].setblocking(False)
        except OSError:
            return
        finally:
            sel.close()
            for s in (a, b):
                s.close()
            with self._lock:
                self._sockets -= {a, b}

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(5)
