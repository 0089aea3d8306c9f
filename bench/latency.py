"""Send→receive latency benchmark on real gateways and a real broker. Prints figures; asserts nothing.

    .venv/bin/python bench/latency.py                      # 1 gateway, 1,000 messages, one after another
    .venv/bin/python bench/latency.py --gateways 3 --clients 50 --rooms 10 --rate 200 --seconds 20

Latency is measured from just before a client writes its `send` frame to the moment
another member of the room (on whichever gateway) reads the `message` frame: the whole
path browser → gateway → Kafka (acks=all) → every gateway's bridge → member. With
--gateways > 1, members of each room are spread over the gateways round-robin, so most
deliveries cross gateways. Uses KAFKA_BOOTSTRAP_SERVERS, or starts the local broker.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import psutil
from support import bench_environment  # bench/support.py: sets up the import path

from tests.support import ChatClient, GatewayProcess, unique_topic


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace, bootstrap: str) -> None:
    topic = unique_topic("bench")
    env = {"CHAT_SEND_RATE": "10000", "CHAT_SEND_BURST": "10000", "DATABASE_URL": args.database_url}
    started = time.monotonic()
    gateways = [
        GatewayProcess(bootstrap=bootstrap, topic=topic, env_overrides=env).start()
        for _ in range(args.gateways)
    ]
    print(
        f"{args.gateways} gateway(s) up in {time.monotonic() - started:.2f} s "
        f"(first: {gateways[0].started_in_s:.2f} s to answer /healthz)"
    )
    try:
        rooms = [f"bench-{i}" for i in range(args.rooms)]
        clients: list[tuple[ChatClient, str]] = []
        for i in range(args.clients):
            room = rooms[i % len(rooms)]
            client = await ChatClient.connect(gateways[i % len(gateways)].ws_url, name=f"c{i}")
            await client.join(room)
            clients.append((client, room))
        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        expected = {room: sum(1 for _, r in clients if r == room) for room in rooms}

        async def reader(client: ChatClient) -> None:
            while True:
                frame = await client.recv(timeout=60)
                if frame["type"] == "message" and frame["user"] != client.welcome["name"]:
                    latencies.append(time.perf_counter() - sent_at[frame["text"]])

        readers = [asyncio.ensure_future(reader(c)) for c, _ in clients]
        procs = [psutil.Process(g.proc.pid) for g in gateways]
        for p in procs:
            p.cpu_percent(None)
        wall = time.monotonic()
        if args.rate:  # a fixed rate from random senders
            total = int(args.rate * args.seconds)
            interval = 1.0 / args.rate
            for n in range(total):
                client, room = clients[n % len(clients)]
                text = f"m{n}"
                sent_at[text] = time.perf_counter()
                await client.post(room, text)
                await asyncio.sleep(max(0.0, wall + (n + 1) * interval - time.monotonic()))
        else:  # one message at a time: pure latency
            total = args.messages
            for n in range(total):
                client, room = clients[0]
                text = f"m{n}"
                before = len(latencies)
                sent_at[text] = time.perf_counter()
                await client.post(room, text)
                while len(latencies) < before + expected[room] - 1:
                    await asyncio.sleep(0.0005)
        want = sum(expected[clients[n % len(clients)][1]] - 1 for n in range(total)) if args.rate else None
        deadline = time.monotonic() + 30
        while want is not None and len(latencies) < want and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - wall
        cpus = [p.cpu_percent(None) for p in procs]
        rss = [p.memory_info().rss / 2**20 for p in procs]
        for task in readers:
            task.cancel()
        ms = [x * 1000 for x in latencies]
        print(
            f"messages sent: {total} in {elapsed:.1f} s; deliveries measured: {len(ms)}"
            + (f" of {want}" if want is not None else "")
        )
        print(
            f"send→receive latency ms: p50 {percentile(ms, 0.50):.2f}  p90 {percentile(ms, 0.90):.2f}  "
            f"p99 {percentile(ms, 0.99):.2f}  max {max(ms):.2f}  mean {statistics.fmean(ms):.2f}"
        )
        for i, (cpu, mem) in enumerate(zip(cpus, rss, strict=True)):
            metrics = gateways[i].metrics()
            parts = sum(
                1
                for k, v in metrics.items()
                if k.startswith("ephemchat_bridge_partition_assigned{") and v == 1
            )
            print(
                f"gateway {i}: CPU {cpu:.0f}% of one core, RSS {mem:.0f} MB, "
                f"partitions read {parts}, local rooms {int(metrics.get('ephemchat_bridge_rooms', 0))}"
            )
        for client, _ in clients:
            await client.close()
    finally:
        for gateway in gateways:
            gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gateways", type=int, default=1)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--rooms", type=int, default=1)
    parser.add_argument("--messages", type=int, default=1000, help="sequential mode: messages to send")
    parser.add_argument("--rate", type=float, default=0, help="messages/s across all clients (0: sequential)")
    parser.add_argument("--seconds", type=float, default=20, help="with --rate: how long")
    args = parser.parse_args()
    with bench_environment() as (bootstrap, database_url):
        args.database_url = database_url
        asyncio.run(run(args, bootstrap))


if __name__ == "__main__":
    main()
