"""This gateway's figures for the cluster stats (counts only, never message text)."""

from __future__ import annotations

import statistics
import time
from collections import Counter as Tally
from collections import deque
from typing import Any

from prometheus_client import Counter

from kafka_bridge.gateway import KafkaGateway
from rooms import metrics as ws_metrics
from rooms.connections import connections
from rooms.layers import LAYER_DROPS


def _total(counter: Counter) -> float:
    return sum(s.value for m in counter.collect() for s in m.samples if s.name.endswith("_total"))


RATE_WINDOW_S = 60.0  # per-room message rates are averaged over the last minute


class GatewaySnapshot:
    """Callable that the stats thread calls every few seconds with the time since the last."""

    def __init__(self, gateway: KafkaGateway) -> None:
        self.gateway = gateway
        self.started = time.monotonic()
        self._acked_window: deque[tuple[float, Tally[str]]] = deque()
        self._frames_in = _total(ws_metrics.FRAMES_IN)
        self._frames_out = _total(ws_metrics.FRAMES_OUT)

    def __call__(self, elapsed_s: float) -> dict[str, Any]:
        elapsed_s = max(elapsed_s, 1e-3)
        frames_in, frames_out = _total(ws_metrics.FRAMES_IN), _total(ws_metrics.FRAMES_OUT)
        in_rate = (frames_in - self._frames_in) / elapsed_s
        out_rate = (frames_out - self._frames_out) / elapsed_s
        self._frames_in, self._frames_out = frames_in, frames_out
        producer, bridge = self.gateway.producer, self.gateway.bridge
        acked, producer.acked_by_room = producer.acked_by_room, Tally()
        now = time.monotonic()
        self._acked_window.append((now, acked))
        while self._acked_window and self._acked_window[0][0] < now - RATE_WINDOW_S:
            self._acked_window.popleft()
        in_window: Tally[str] = Tally()
        for _at, counts in self._acked_window:
            in_window.update(counts)
        window_s = max(1.0, min(RATE_WINDOW_S, now - self.started))
        latencies = list(producer.recent_latencies_s)
        p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) >= 2 else None
        return {
            "connections": len(connections),
            "rooms": bridge.local_rooms() if bridge is not None else {},
            "room_rates": {room: round(count / window_s, 4) for room, count in in_window.items()},
            "frames_in_per_s": round(in_rate, 2),
            "frames_out_per_s": round(out_rate, 2),
            "produce_p99_ms": round(p99, 2) if p99 is not None else None,
            "partitions": bridge.assigned_partitions() if bridge is not None else [],
            "lag": {str(p): n for p, n in (bridge.lag if bridge is not None else {}).items()},
            "drops": int(_total(LAYER_DROPS)),
        }
