"""`python manage.py runkafkabridge`: one gateway node (Daphne + the Kafka bridge)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ephemchat.config import chat_config

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run one gateway node: Daphne (HTTP + WebSocket) and the Kafka bridge in one process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
        parser.add_argument(
            "--proxy-headers",
            action="store_true",
            help="trust X-Forwarded-For/-Port/-Proto (only behind a proxy such as nginx)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        # Imported here: daphne.server installs Twisted's asyncio reactor on import.
        from daphne.endpoints import build_endpoint_description_strings
        from twisted.internet import reactor

        from ephemchat import runtime
        from ephemchat.asgi import application
        from ephemchat.server import DRAIN_MARGIN_S, GatewayServer
        from kafka_bridge.gateway import GatewayStartError

        config = chat_config()
        loop: asyncio.AbstractEventLoop = reactor._asyncioEventloop  # type: ignore[attr-defined]
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runtime.started_backend())
        except GatewayStartError as exc:
            raise CommandError(
                f"{exc}\n(Kafka at {config.bootstrap_servers}, topic {config.topic})"
            ) from None

        host, port = options["host"], options["port"]
        # The largest frame we send: a full history, each text JSON-escaped at worst 6 bytes a char.
        outgoing_limit = max(1 << 20, config.history_limit * (config.max_text_chars * 6 + 512))
        proxy = options["proxy_headers"]

        def ready() -> None:
            server.install_signal_handlers()
            self.stdout.write(
                f"ephemchat gateway on http://{host}:{port}/ (ws at /ws/chat/), "
                f"Kafka {config.bootstrap_servers}, topic {config.topic}; "
                f"ready in {time.monotonic() - started:.2f} s. Ctrl-C or SIGTERM drains and stops."
            )
            self.stdout.flush()

        server = GatewayServer(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=False,
            # Autobahn applies these to frames both ways: they must let out a full history
            # frame. Client frames over max_frame_bytes are closed (1009) by the consumer.
            websocket_max_message_size=outgoing_limit,
            websocket_max_frame_size=outgoing_limit,
            proxy_forwarded_address_header="X-Forwarded-For" if proxy else None,
            proxy_forwarded_port_header="X-Forwarded-Port" if proxy else None,
            proxy_forwarded_proto_header="X-Forwarded-Proto" if proxy else None,
            drain_timeout=config.delivery_timeout_ms / 1000 + DRAIN_MARGIN_S,
            ready_callable=ready,
            verbosity=0,
        )
        server.run()
        self.stdout.write("gateway stopped")
