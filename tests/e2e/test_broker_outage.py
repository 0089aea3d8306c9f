"""The broker stopped mid-chat (guarantee 2): sends are answered `unavailable` with no ack,
/readyz says 503, the refused message never appears, and chat resumes when the broker
returns, without restarting the gateway."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from kafka_bridge.local_broker import LocalBroker, free_port_pair
from tests.support import ChatClient, http_get

pytestmark = pytest.mark.e2e


@pytest.fixture
def own_broker():
    """A broker of this test alone: stopping it must not disturb the others."""
    port, controller = free_port_pair()
    data_dir = Path(tempfile.mkdtemp(prefix="ephemchat-outage-"))
    broker = LocalBroker(port=port, controller_port=controller, data_dir=data_dir)
    broker.start(timeout=120)
    yield broker
    broker.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


async def wait_for_status(url: str, status: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if http_get(url)[0] == status:
            return time.monotonic() - started
        await asyncio.sleep(0.25)
    raise AssertionError(f"{url} did not answer {status} within {timeout} s")


async def test_broker_outage_and_recovery(gateway_factory, own_broker, topic):
    gw = gateway_factory(topic, bootstrap=own_broker.bootstrap, CHAT_DELIVERY_TIMEOUT_MS="3000")
    alice = await ChatClient.connect(gw.ws_url, name="alice")
    bob = await ChatClient.connect(gw.ws_url, name="bob")
    await alice.join("outage")
    await bob.join("outage")
    await alice.post("outage", "before", client_id="b")
    assert {f["type"] for f in await alice.collect(2)} == {"ack", "message"}
    await bob.expect("message")

    own_broker.stop()
    await wait_for_status(f"{gw.http}/readyz", 503, timeout=15)
    await alice.post("outage", "during the outage", client_id="lost")
    error = await alice.expect("error", timeout=20)
    assert (error["code"], error["room"], error["client_id"]) == ("unavailable", "outage", "lost")
    assert await alice.quiet(1.0) == [], "no ack, no message after unavailable"

    own_broker.start(timeout=120)
    recovered_in = await wait_for_status(f"{gw.http}/readyz", 200, timeout=60)
    print(f"\n/readyz back to 200 {recovered_in:.1f} s after the broker answered again")
    await alice.post("outage", "after", client_id="a")
    frames = await alice.collect(2, timeout=30)
    assert {f["type"] for f in frames} == {"ack", "message"}
    assert [f["text"] for f in frames if f["type"] == "message"] == ["after"]
    got = await bob.expect("message", timeout=30)
    assert got["text"] == "after"
    newcomer = await ChatClient.connect(gw.ws_url)
    history = await newcomer.join("outage")
    assert [m["text"] for m in history["messages"]] == ["before", "after"]
    assert await bob.quiet(1.0) == []
    for client in (alice, bob, newcomer):
        await client.close()
