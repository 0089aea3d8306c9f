"""Origin check at the WebSocket handshake.

Browsers always send `Origin`, so a page on another site is refused unless its origin is
allowed (cross-site WebSocket hijacking). Clients that are not browsers (bots, CLIs, the
tests) send no Origin and are let in: the Origin header protects browser users, and any
other client could forge it anyway.

Allowed: the hosts of ALLOWED_HOSTS (any scheme and port) and CHAT_ALLOWED_ORIGINS.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import ParseResult

from channels.security.websocket import OriginValidator
from django.conf import settings


class ChatOriginValidator(OriginValidator):
    def __init__(self, application: Any) -> None:
        super().__init__(application, [*settings.ALLOWED_HOSTS, *settings.CHAT_ALLOWED_ORIGINS])

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        return bool(self.validate_origin(parsed_origin))
