"""Prometheus metrics of the Kafka side of a gateway."""

from prometheus_client import Counter, Gauge, Histogram

PRODUCE_LATENCY = Histogram(
    "ephemchat_produce_latency_seconds",
    "Time from produce() to Kafka's acks=all acknowledgement",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PRODUCE_FAILURES = Counter("ephemchat_produce_failures_total", "Sends Kafka did not acknowledge in time")
BRIDGE_RECORDS = Counter(
    "ephemchat_bridge_records_total",
    "Records read by the bridge, by outcome (dispatched, filtered = no local member, bad, expired)",
    ["outcome"],
)
BRIDGE_PARTITIONS = Gauge("ephemchat_bridge_partitions_assigned", "Partitions this gateway reads")
BRIDGE_ROOMS = Gauge("ephemchat_bridge_rooms", "Rooms with at least one member on this gateway")
BRIDGE_PARTITION_READ = Gauge(
    "ephemchat_bridge_partition_assigned",
    "1 for each partition this gateway reads now, 0 once released",
    ["partition"],
)
BRIDGE_LAG = Gauge(
    "ephemchat_bridge_lag_records", "High watermark minus the bridge position, per partition", ["partition"]
)
HISTORY_READ_SECONDS = Histogram(
    "ephemchat_history_read_seconds",
    "Time to read one room's history from Kafka",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
HISTORY_READ_FAILURES = Counter("ephemchat_history_read_failures_total", "History reads that failed")
HISTORY_BAD_RECORDS = Counter(
    "ephemchat_history_bad_records_total", "Records skipped by history reads because they do not parse"
)
