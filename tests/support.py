"""Test helpers: real gateway processes and real WebSocket clients.

Nothing here fakes Kafka: a `GatewayProcess` is `manage.py runkafkabridge` in a
subprocess, talking to the broker of the session (see conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websockets

from kafka_bridge.local_broker import free_port

PROJECT_DIR = Path(__file__).resolve().parent.parent
ARTIFACTS_DIR = PROJECT_DIR / "test-artifacts"
RECV_TIMEOUT_S = 15.0  # generous: machines are shared; a timeout means a real failure


def unique_topic(prefix: str = "test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@dataclass
class GatewayProcess:
    """One `runkafkabridge` node on a free port."""

    bootstrap: str
    topic: str
    env_overrides: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    started_in_s: float = 0.0

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "CHAT_TOPIC": self.topic,
                "PYTHONUNBUFFERED": "1",
                "DJANGO_SETTINGS_MODULE": "ephemchat.settings",
            }
        )
        env.update(self.env_overrides)
        return env

    def start(self, timeout: float = 60.0) -> GatewayProcess:
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS_DIR / f"gateway-{self.topic}-{self.port}.log"
        log = open(self.log_path, "wb")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runkafkabridge", "--port", str(self.port)],
            cwd=PROJECT_DIR,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status, _ = http_get(f"{self.http}/healthz", timeout=1)
                if status == 200:
                    self.started_in_s = time.monotonic() - started
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gateway did not answer within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def wait(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()

    def metrics(self) -> dict[str, float]:
        """Our gateway's Prometheus samples, `name{labels}` -> value."""
        status, body = http_get(f"{self.http}/metrics")
        assert status == 200
        samples: dict[str, float] = {}
        for line in body.splitlines():
            if line.startswith("ephemchat_"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples


class ChatClient:
    """A real WebSocket client speaking the protocol, with bounded waits."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.welcome: dict[str, Any] = {}

    @classmethod
    async def connect(cls, url: str, *, name: str | None = None, **kwargs: Any) -> ChatClient:
        # A client that stopped reading cannot see the close handshake's answer: waiting
        # the default 10 s for it in every test's clean-up buys nothing.
        kwargs.setdefault("close_timeout", 1)
        ws = await websockets.connect(url, max_size=2**22, **kwargs)
        client = cls(ws)
        client.welcome = await client.expect("welcome")
        if name is not None:
            await client.send({"type": "hello", "name": name})
            client.welcome = await client.expect("welcome")
        return client

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = RECV_TIMEOUT_S) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame = json.loads(raw)
        assert isinstance(frame, dict)
        return frame

    async def expect(self, kind: str, timeout: float = RECV_TIMEOUT_S) -> dict[str, Any]:
        frame = await self.recv(timeout)
        assert frame["type"] == kind, f"expected {kind}, got {frame}"
        return frame

    async def join(self, room: str, since: int | None = None) -> dict[str, Any]:
        """Join and return the history frame."""
        frame: dict[str, Any] = {"type": "join", "room": room}
        if since is not None:
            frame["since"] = since
        await self.send(frame)
        joined = await self.expect("joined")
        assert joined["room"] == room
        history = await self.expect("history")
        assert history["room"] == room
        return history

    async def post(self, room: str, text: str, client_id: str | None = None) -> None:
        frame = {"type": "send", "room": room, "text": text}
        if client_id is not None:
            frame["client_id"] = client_id
        await self.send(frame)

    async def collect(
        self, count: int, timeout: float = RECV_TIMEOUT_S, kind: str | None = None
    ) -> list[dict]:
        """The next `count` frames (of `kind`, skipping others), each within `timeout`."""
        frames: list[dict[str, Any]] = []
        while len(frames) < count:
            frame = await self.recv(timeout)
            if kind is None or frame["type"] == kind:
                frames.append(frame)
        return frames

    async def quiet(self, seconds: float) -> list[dict[str, Any]]:
        """Everything that arrives within `seconds` (to show that nothing more comes)."""
        frames: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                frames.append(await self.recv(left))
            except TimeoutError:
                break
        return frames

    async def close(self) -> None:
        await self.ws.close()


def read_topic(bootstrap: str, topic: str, timeout: float = 20.0) -> list[tuple[int, int, bytes, bytes]]:
    """Every record now in `topic` as (partition, offset, key, value), read straight from Kafka."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "tests-read-topic", "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        records: list[tuple[int, int, bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        done: set[int] = set()
        while len(done) < len(ends) and time.monotonic() < deadline:
            for m in consumer.consume(500, 0.5):
                if m.error() is None:
                    records.append((m.partition(), m.offset(), m.key(), m.value()))
                    if m.offset() + 1 >= ends[m.partition()]:
                        done.add(m.partition())
        assert len(done) == len(ends), "could not read the whole topic in time"
        return records
    finally:
        consumer.close()


async def post_paced(client: ChatClient, room: str, texts: list[str], window: int = 40) -> dict[str, int]:
    """Post every text with client_id = its index, keeping at most `window` unacknowledged;
    returns client_id -> acked offset. Other frames (messages, `lagging`) are skipped."""
    acks: dict[str, int] = {}
    sent = 0
    while len(acks) < len(texts):
        while sent < len(texts) and sent - len(acks) < window:
            await client.post(room, texts[sent], client_id=str(sent))
            sent += 1
        frame = await client.recv()
        if frame["type"] == "ack":
            acks[frame["client_id"]] = frame["offset"]
        elif frame["type"] == "error" and "client_id" in frame:
            raise AssertionError(f"send refused: {frame}")
    return acks


async def join_mid_flow(
    writer: ChatClient, joiner_url: str, room: str, *, total: int, before_join: Any = None
) -> list[str]:
    """`writer` (already in `room`) posts n0..n{total-1} steadily; a new client on
    `joiner_url` joins mid-flow. Returns the texts that client got, history then live, and
    checks that the join really happened mid-flow and that nothing more arrives after."""

    async def flow() -> None:
        for n in range(total):
            await writer.post(room, f"n{n}")
            await asyncio.sleep(0.003)

    flowing = asyncio.ensure_future(flow())
    await asyncio.sleep(0.2)
    if before_join is not None:
        before_join()
    joiner = await ChatClient.connect(joiner_url)
    history = await joiner.join(room)
    await flowing
    seen = [m["text"] for m in history["messages"]]
    assert 0 < len(seen) < total, "the join happened mid-flow"
    seen += [m["text"] for m in await joiner.collect(total - len(seen), kind="message")]
    assert [f for f in await joiner.quiet(0.5) if f["type"] == "message"] == [], "nothing twice"
    await joiner.close()
    return seen
