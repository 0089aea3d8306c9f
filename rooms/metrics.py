"""Prometheus metrics of the WebSocket side of a gateway."""

from prometheus_client import Counter, Gauge, Histogram

CONNECTIONS = Gauge("ephemchat_ws_connections", "Open WebSocket connections on this gateway")
FRAMES_IN = Counter("ephemchat_ws_frames_in_total", "Client frames received, by type", ["type"])
FRAMES_OUT = Counter("ephemchat_ws_frames_out_total", "Frames sent to clients, by type", ["type"])
ERRORS = Counter("ephemchat_ws_errors_total", "Error frames sent, by code", ["code"])
CLOSES = Counter(
    "ephemchat_ws_server_closes_total", "Connections closed by the server, by close code", ["code"]
)
LAGGING = Counter(
    "ephemchat_lagging_total", "Times a connection fell behind in a room and was told `lagging`"
)
MESSAGE_AGE = Histogram(
    "ephemchat_message_age_seconds",
    "Age of a live message (now - broker timestamp) when handed to a client",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
SKIPPED = Counter(
    "ephemchat_lagging_skipped_total",
    "Live messages not sent to a connection because it was lagging in that room (it re-joins with since)",
)
