"""Serving the ingest so that a restart loses nothing a logger that never retries sends.

The listening socket is opened with ``SO_REUSEPORT``, so a new ingest can bind the same port
while the old one still serves. On SIGTERM the old one drains for ``ingest.drain_seconds``:
``/readyz`` answers 503 (Kubernetes takes the pod out of its Service), every answer carries
``Connection: close`` (each client's next request opens a new connection, to the new ingest),
and the kernel is told to hand new connections to the newest socket on the port. Only then
does it stop listening, finish what is in flight, flush its producer and exit. A second signal
stops it at once.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import socket
import struct
import threading
from collections.abc import Callable
from types import FrameType

import uvicorn

log = logging.getLogger("infersight.ingest")

#: ``SO_ATTACH_REUSEPORT_CBPF`` from ``<asm-generic/socket.h>`` (Linux 4.5); Python does not name it.
SO_ATTACH_REUSEPORT_CBPF = 51
#: One classic BPF instruction, ``BPF_RET | BPF_K``: return the constant.
_BPF_RET_K = 0x06
LISTEN_BACKLOG = 2048


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` that another ingest may bind too (``SO_REUSEPORT``)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6 and host in ("::", ""):
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(address)
    sock.listen(LISTEN_BACKLOG)
    return sock


def steer_to_newest(sock: socket.socket) -> bool:
    """Have the kernel give the port's new connections to the socket bound after this one.

    Sockets sharing a port with ``SO_REUSEPORT`` are numbered in the order they were bound; a
    program that always answers 1 picks the second, the successor's. Once this socket is
    closed, 1 is past the end and the kernel spreads connections as before. Without a
    successor, this socket keeps taking them until it closes. False when the kernel refuses.
    """
    instruction = struct.pack("HBBI", _BPF_RET_K, 0, 0, 1)
    program = ctypes.create_string_buffer(instruction)
    fprog = struct.pack("HL", 1, ctypes.addressof(program))
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)
    except OSError as exc:
        log.warning("cannot steer new connections to a successor: %s", exc)
        return False
    return True


class DrainingServer(uvicorn.Server):
    """uvicorn's server, draining for ``drain_seconds`` on the first SIGTERM before it shuts down."""

    def __init__(
        self,
        config: uvicorn.Config,
        sock: socket.socket,
        drain_seconds: float,
        on_drain: Callable[[], None],
    ) -> None:
        super().__init__(config)
        self.sock = sock
        self.drain_seconds = drain_seconds
        self.on_drain = on_drain
        self._draining: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self._draining is not None or self.drain_seconds <= 0:
            super().handle_exit(sig, frame)
            return
        log.info("SIGTERM: draining for %.1f s, then stopping", self.drain_seconds)
        self.on_drain()
        steer_to_newest(self.sock)
        self._draining = threading.Timer(self.drain_seconds, super().handle_exit, (sig, frame))
        self._draining.daemon = True
        self._draining.start()
