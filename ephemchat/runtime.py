"""The composition root of a gateway process: one KafkaGateway wired to our channel layer.

`runkafkabridge` starts it before serving; under plain `daphne` the first connection
starts it. Tests reset it with `reset_gateway()`.
"""

from __future__ import annotations

import asyncio

from channels.layers import get_channel_layer

from ephemchat.config import chat_config
from ephemchat.snapshot import GatewaySnapshot
from kafka_bridge.gateway import KafkaGateway
from kafka_bridge.stats import ClusterStats, new_gateway_id
from rooms.groups import GroupDispatcher
from rooms.layers import RoomChannelLayer

_gateway: KafkaGateway | None = None


def gateway() -> KafkaGateway:
    global _gateway
    if _gateway is None:
        layer = get_channel_layer()
        if not isinstance(layer, RoomChannelLayer):
            raise RuntimeError(
                "CHANNEL_LAYERS must use rooms.layers.RoomChannelLayer: Kafka fans out, not the layer"
            )
        _gateway = KafkaGateway(chat_config(), GroupDispatcher(layer))
    return _gateway


async def started_backend() -> KafkaGateway:
    gw = gateway()
    if not gw.started:
        await gw.start()
        if gw.stats is None:
            loop = asyncio.get_running_loop()
            gw.stats = ClusterStats(gw.config, GatewaySnapshot(gw), new_gateway_id(), loop)
            gw.stats.start()
    return gw


def current_gateway() -> KafkaGateway | None:
    return _gateway


def reset_gateway() -> None:
    global _gateway
    _gateway = None
