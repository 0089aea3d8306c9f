"""Join latency against a busy partition: what a history read from Kafka costs. Prints figures.

    .venv/bin/python bench/join_history.py [--messages 5000] [--size 1000] [--joins 20]

Posts --messages records of --size characters to room "busy", then times joins (join frame
sent → history frame received) of "busy" (newest 50 of them) and of a quiet room on the
same partition (the reader scans the partition's unexpired records to find none of its own).
Uses KAFKA_BOOTSTRAP_SERVERS, or starts the local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from support import bench_environment  # bench/support.py: sets up the import path

from kafka_bridge.partitioner import room_partition
from tests.support import ChatClient, GatewayProcess, post_paced, unique_topic


async def time_joins(url: str, room: str, joins: int) -> tuple[list[float], int]:
    timings, size = [], 0
    for _ in range(joins):
        client = await ChatClient.connect(url)
        started = time.perf_counter()
        history = await client.join(room)
        timings.append((time.perf_counter() - started) * 1000)
        size = len(history["messages"])
        await client.close()
    return timings, size


async def run(args: argparse.Namespace, bootstrap: str, database_url: str) -> None:
    env = {"CHAT_SEND_RATE": "10000", "CHAT_SEND_BURST": "10000", "DATABASE_URL": database_url}
    gateway = GatewayProcess(bootstrap=bootstrap, topic=unique_topic("joinbench"), env_overrides=env).start()
    try:
        quiet = next(
            f"quiet-{i}"
            for i in range(10_000)
            if room_partition(f"quiet-{i}", 50) == room_partition("busy", 50)
        )
        writer = await ChatClient.connect(gateway.ws_url)
        await writer.join("busy")
        started = time.monotonic()
        await post_paced(writer, "busy", [f"{n}-" + "x" * args.size for n in range(args.messages)], window=60)
        print(f"posted {args.messages} x {args.size} chars in {time.monotonic() - started:.1f} s")
        await writer.close()
        for room in ("busy", quiet):
            timings, size = await time_joins(gateway.ws_url, room, args.joins)
            print(
                f"join {room:>10} ({size} in history): median {statistics.median(timings):.1f} ms, "
                f"max {max(timings):.1f} ms over {args.joins} joins"
            )
    finally:
        gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--joins", type=int, default=20)
    args = parser.parse_args()
    with bench_environment() as (bootstrap, database_url):
        asyncio.run(run(args, bootstrap, database_url))


if __name__ == "__main__":
    main()
