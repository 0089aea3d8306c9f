"""Let the application close WebSockets with the protocol's codes 1008, 1009 and 1012.

Also: Autobahn (under Daphne) refuses application close codes other than 1000 and 3000-4999,
but PROTOCOL.md closes with 1008 (abuse), 1009 (frame too large) and 1012 (restart, so
clients reconnect elsewhere at once). These are registered IANA codes a server may send
(RFC 6455 section 7.4.1 and the IANA registry), so we send the close frame directly.
"""

from __future__ import annotations

from typing import Any

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

SERVER_CLOSE_CODES = frozenset({1000, 1001, 1008, 1009, 1011, 1012, 1013})


class ChatWebSocketProtocol(WebSocketProtocol):
    # When Autobahn itself fails a connection (a frame over the size limit: 1009), send a
    # close frame with the code instead of dropping TCP, so clients learn why.
    failByDrop = False

    def serverClose(self, code: Any = None) -> None:
        code = 1000 if code is None else code
        if code in SERVER_CLOSE_CODES:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            super().serverClose(code=code)


def install() -> None:
    """Make Daphne build our protocol (idempotent; for runkafkabridge and plain daphne)."""
    WebSocketFactory.protocol = ChatWebSocketProtocol
