"""Other ways in: plain `daphne ephemchat.asgi:application`, and records posted with
Kafka's own console producer (PROTOCOL.md section 3)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pytest

from kafka_bridge.local_broker import find_java, free_port, kafka_jar_dir
from tests.support import PROJECT_DIR, ChatClient, http_get

pytestmark = pytest.mark.e2e


@pytest.fixture
def plain_daphne(kafka_bootstrap, gateway_database_url, topic):
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CHAT_TOPIC": topic,
        "DATABASE_URL": gateway_database_url,
        "DJANGO_SETTINGS_MODULE": "ephemchat.settings",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "ephemchat.asgi:application"],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if http_get(f"http://127.0.0.1:{port}/healthz", timeout=1)[0] == 200:
                break
        except OSError:
            time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(20)


async def test_plain_daphne_serves_chat_and_readiness(plain_daphne):
    """Under `daphne ephemchat.asgi:application` the first contact (a readiness probe or a
    connection) starts the Kafka side; then chat works as under runkafkabridge."""
    base = f"http://127.0.0.1:{plain_daphne}"
    status, body = http_get(f"{base}/readyz")
    assert status == 200 and json.loads(body)["kafka"] == "reachable"
    client = await ChatClient.connect(f"ws://127.0.0.1:{plain_daphne}/ws/chat/", name="dora")
    await client.join("plain")
    await client.post("plain", "via daphne", client_id="d1")
    frames = await client.collect(2)
    assert {f["type"] for f in frames} == {"ack", "message"}
    await client.close()


async def test_kafka_console_producer_posts_to_a_room(gateway, kafka_bootstrap, topic):
    """A record written by Kafka's own console producer, with the room as key, reaches the room."""
    member = await ChatClient.connect(gateway.ws_url)
    await member.join("console")
    record = json.dumps({"room": "console", "user": "ops", "text": "maintenance at six"})
    done = await asyncio.to_thread(
        subprocess.run,
        [find_java(), "-cp", f"{kafka_jar_dir()}/*", "org.apache.kafka.tools.ConsoleProducer",
         "--bootstrap-server", kafka_bootstrap, "--topic", topic,
         "--property", "parse.key=true", "--property", "key.separator=|"],
        input=f"console|{record}\n", text=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    message = await member.expect("message", timeout=30)
    assert (message["room"], message["user"], message["text"]) == ("console", "ops", "maintenance at six")
    await member.close()
