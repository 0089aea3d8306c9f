"""One gateway, real Kafka: the basic round trip."""

from tests.support import ChatClient, http_get


async def test_a_message_reaches_every_member_and_the_sender_gets_an_ack(gateway):
    """A send is acked with its Kafka offset and delivered once to every member, sender included."""
    alice = await ChatClient.connect(gateway.ws_url, name="alice")
    bob = await ChatClient.connect(gateway.ws_url, name="bob")
    assert (await alice.join("lobby"))["messages"] == []
    await bob.join("lobby")
    await alice.post("lobby", "hi bob", client_id="c-1")
    got = await bob.expect("message")
    assert (got["room"], got["user"], got["text"]) == ("lobby", "alice", "hi bob")
    assert got["expires_at"] - got["ts"] == 120_000
    frames = await alice.collect(2)
    ack = next(f for f in frames if f["type"] == "ack")
    echo = next(f for f in frames if f["type"] == "message")
    assert ack == {"type": "ack", "room": "lobby", "client_id": "c-1", "offset": got["offset"]}
    assert echo == got
    assert http_get(f"{gateway.http}/readyz")[0] == 200
    await alice.close()
    await bob.close()
