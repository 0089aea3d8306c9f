"""One gateway node: Daphne's `Server` and the Kafka gateway in one process, one loop.

Daphne has no ASGI lifespan, so this drives its `Server` API directly (as Daphne's own
`runserver` does): the Kafka gateway starts before the first connection is accepted, and
SIGTERM drains the node:

1. stop listening (nginx sends new connections to the other gateways),
2. let every in-flight send end in `ack` or `unavailable`, and close each socket with 1012,
3. stop the producer, bridge and history reader, then the reactor.

The drain is bounded by the delivery timeout + DRAIN_MARGIN_S. A second SIGTERM or SIGINT
stops the reactor at once (what started this process still cleans up); a third exits.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import struct
import termios
import time
from collections.abc import Callable
from typing import Any

from daphne.server import Server  # installs Twisted's asyncio reactor: import before twisted.internet
from twisted.internet import reactor

from ephemchat import runtime
from rooms.connections import connections

logger = logging.getLogger(__name__)

# Sends in flight end within the producer's delivery timeout; 2 s more covers closing.
DRAIN_MARGIN_S = 2.0


def _unsent_in_kernel(transport: Any) -> int:
    """Bytes in the socket's kernel send queue that the peer has not acknowledged."""
    try:
        raw = fcntl.ioctl(transport.socket.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (AttributeError, OSError, ValueError):  # not a plain socket, or already closed
        return 0
    return int(struct.unpack("i", raw)[0])


def transport_backlog(protocol: Any) -> Callable[[int], int]:
    """`backlog(bound)`: bytes written to a WebSocket that its client has not taken yet:
    Twisted's buffer plus the kernel's send queue (so a client that stopped reading is
    seen at once, however large the kernel's buffers grow). `bound` is unused here."""

    def backlog(bound: int) -> int:
        transport: Any = getattr(protocol, "transport", None)
        try:
            buffered = int(len(transport.dataBuffer) - transport.offset + transport._tempDataLen)
        except AttributeError:  # no transport, or not a Twisted FileDescriptor (TLS)
            return 0
        return buffered + _unsent_in_kernel(transport)

    return backlog


def _stop_reactor() -> None:
    if reactor.running:  # type: ignore[attr-defined]
        reactor.stop()  # type: ignore[attr-defined, misc]


class GatewayServer(Server):
    """Daphne's server, plus what a gateway needs: a backlog probe per socket and a drain."""

    def __init__(self, *args: Any, drain_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.drain_timeout = drain_timeout
        self.ports: list[Any] = []
        self._shutting_down = False
        self._signals = 0
        self._drain_task: asyncio.Future[None] | None = None

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
        if scope.get("type") == "websocket":
            scope["ephemchat.transport_backlog"] = transport_backlog(protocol)
        return super().create_application(protocol, scope)

    def listen_success(self, port: Any) -> None:
        self.ports.append(port)
        super().listen_success(port)

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_event_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.on_signal, sig)

    def on_signal(self, sig: int) -> None:
        self._signals += 1
        if self._signals == 2:
            # Stop now, but through the reactor, so that callers (runlocal) still clean up.
            logger.warning("second %s: stopping without waiting for the drain", signal.Signals(sig).name)
            _stop_reactor()
            return
        if self._signals > 2:
            os._exit(1)
        self._shutting_down = True
        logger.info("%s: draining", signal.Signals(sig).name)
        self._drain_task = asyncio.ensure_future(self.drain())

    async def drain(self) -> None:
        started = time.monotonic()
        for port in self.ports:
            port.stopListening()
        closed = await connections.drain_all(timeout=self.drain_timeout)
        gateway = runtime.current_gateway()
        if gateway is not None:
            await gateway.stop(drain_timeout=max(0.5, self.drain_timeout - (time.monotonic() - started)))
        logger.info("drained %d connections in %.2f s", closed, time.monotonic() - started)
        reactor.callLater(0.1, _stop_reactor)  # type: ignore[arg-type]
