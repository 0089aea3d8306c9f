"""The chat page in real Chromium against real gateways and real Kafka."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import quote

import pytest
from playwright.sync_api import WebSocket, WebSocketRoute, expect

from tests.browser.helpers import PHONE, STATS_UNAVAILABLE, messages, open_chat, send

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.kafka]

# Chromium reports a WebSocket that cannot connect (a killed gateway) as a console error.
WS_FAILED = r"WebSocket connection to .* failed"


def test_two_gateways_two_browsers_chat_in_one_room(gateway_factory, topic, new_page, page_log, screenshot):
    """Alice on gateway A and Bob on gateway B see each other's messages, once each."""
    gateway_a = gateway_factory(topic)
    gateway_b = gateway_factory(topic)

    alice = new_page()  # first visit: the page asks for a nickname
    alice.goto(f"{gateway_a.http}/r/lobby/")
    dialog = alice.get_by_role("dialog", name="Pick a nickname")
    expect(dialog).to_be_visible()
    alice.get_by_role("textbox", name="Nickname").fill("alice")
    alice.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    expect(alice.locator("#conn-status")).to_have_attribute("data-state", "online")
    expect(alice.locator("#name-button")).to_have_text("alice")

    bob = open_chat(new_page(name="bob"), f"{gateway_b.http}/r/lobby/")

    send(alice, "hi from alice, via gateway A")
    expect(messages(bob, "lobby", "hi from alice, via gateway A")).to_have_count(1)
    expect(messages(bob, "lobby", "hi from alice, via gateway A").locator(".msg-user")).to_have_text("alice")
    send(bob, "hello alice, bob here via B")
    expect(messages(alice, "lobby", "hello alice, bob here via B")).to_have_count(1)

    # Own messages: confirmed (acked and echoed) once, marked as mine, counting down.
    own = messages(alice, "lobby", "hi from alice, via gateway A")
    expect(own).to_have_count(1)
    expect(own).to_have_attribute("data-offset", re.compile(r"^\d+$"))
    expect(own).to_have_class(re.compile(r"\bis-mine\b"))
    expect(own).to_have_attribute("data-state", "shown")  # acked, and its echo took over
    expect(own).not_to_have_class(re.compile(r"\bis-local\b"))
    expect(own.locator(".msg-remaining")).to_have_text(re.compile(r"^(1:[0-5]\d|2:00)$"))
    expect(alice.locator("#log-lobby .msg")).to_have_count(2)
    expect(bob.locator("#log-lobby .msg")).to_have_count(2)

    # The nickname is remembered: a reload does not ask again, and history comes back.
    alice.reload()
    expect(alice.locator("#conn-status")).to_have_attribute("data-state", "online")
    expect(alice.get_by_role("dialog", name="Pick a nickname")).to_be_hidden()
    expect(alice.locator("#name-button")).to_have_text("alice")
    expect(alice.locator("#log-lobby .msg")).to_have_count(2)
    screenshot(alice)
    assert page_log.unexpected(STATS_UNAVAILABLE) == []


def test_a_message_disappears_at_its_expiry(gateway_factory, topic, new_page, page_log, screenshot):
    """Under a 5 s TTL a message shows its countdown, stays until expiry, then is removed."""
    gateway = gateway_factory(topic, CHAT_MESSAGE_TTL="5")
    page = open_chat(new_page(name="erin"), f"{gateway.http}/r/fleeting/")
    expect(page.locator("#composer-hint")).to_contain_text("5 seconds")

    send(page, "this will vanish")
    sent_at = time.monotonic()
    message = messages(page, "fleeting", "this will vanish")
    expect(message).to_have_attribute("data-offset", re.compile(r"^\d+$"))
    expect(message.locator(".msg-remaining")).to_have_text(re.compile(r"^[1-5]s$"))
    screenshot(page)

    # Still there well before the TTL, gone soon after it.
    time.sleep(max(0.0, 2.0 - (time.monotonic() - sent_at)))
    expect(message).to_have_count(1)
    expect(message).to_have_count(0, timeout=10_000)
    assert time.monotonic() - sent_at > 3.5, "removed long before its expires_at"

    # A fresh visit gets no expired message in its history.
    page.reload()
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "online")
    time.sleep(1)
    expect(page.locator("#log-fleeting .msg")).to_have_count(0)
    assert page_log.unexpected() == []


XSS_TEXTS = [
    '<img src=x onerror="window.__xss = 1">',
    "<script>window.__xss = 2</script>",
    '<svg onload="window.__xss = 3"></svg>',
    "<b>not bold</b> &amp; &lt;not an entity&gt;",
]
XSS_NAME = "<img src=x onerror=__xss=4>"  # 27 characters: a valid name


def test_html_in_messages_and_names_is_shown_as_text(gateway_factory, topic, new_page, page_log, screenshot):
    """Payloads with HTML show literally, for the sender and for others; no script runs."""
    gateway = gateway_factory(topic)
    mallory = open_chat(new_page(name=XSS_NAME), f"{gateway.http}/r/xss/")
    viewer = open_chat(new_page(name="victor"), f"{gateway.http}/r/xss/")

    for text in XSS_TEXTS:
        send(mallory, text)
    for page in (viewer, mallory):
        for text in XSS_TEXTS:
            expect(messages(page, "xss", text)).to_have_count(1)
        expect(page.locator("#log-xss .msg-text")).to_have_text(XSS_TEXTS)
        expect(page.locator("#room-logs img, #room-logs script, #room-logs svg, #room-logs b")).to_have_count(
            0
        )
    expect(viewer.locator("#log-xss .msg-user").first).to_have_text(XSS_NAME)
    time.sleep(0.5)  # an onerror/onload handler would have run by now
    for page in (viewer, mallory):
        assert page.evaluate("typeof window.__xss") == "undefined"
    screenshot(viewer)
    assert page_log.unexpected() == []


def test_page_reconnects_through_another_gateway_and_misses_nothing(
    gateway_factory, topic, new_page, page_log, screenshot
):
    """Gateway A is killed under Carol's page: it reconnects through B, re-joins with
    `since`, and shows what was sent meanwhile exactly once, including her own message.

    The page rotates through `?gateways=A,B`. To make "meanwhile" certain, the test holds
    Carol's connections to B (closing them at once) until Dave has posted; then lets them
    through to the real gateway B."""
    gateway_a = gateway_factory(topic)
    gateway_b = gateway_factory(topic)
    gateways = quote(f"{gateway_a.ws_url},{gateway_b.ws_url}", safe="")
    carol = new_page(name="carol")
    joins: list[dict] = []

    def watch_frames(ws: WebSocket) -> None:
        def on_sent(payload: str | bytes) -> None:
            frame = json.loads(payload)
            if frame.get("type") == "join":
                joins.append(frame)

        ws.on("framesent", on_sent)

    carol.on("websocket", watch_frames)
    open_chat(carol, f"{gateway_a.http}/r/relay/?gateways={gateways}")
    assert carol.locator("#chat").get_attribute("data-ws-url") == gateway_a.ws_url
    dave = open_chat(new_page(name="dave"), f"{gateway_b.http}/r/relay/")

    hold = {"on": True, "refused": 0}

    def to_gateway_b(route: WebSocketRoute) -> None:
        if hold["on"]:
            hold["refused"] += 1
            route.close(code=1013, reason="held by the test")
        else:
            route.connect_to_server()

    carol.context.route_web_socket(gateway_b.ws_url, to_gateway_b)

    send(dave, "before the kill")
    expect(messages(carol, "relay", "before the kill")).to_have_count(1)

    gateway_a.kill()
    expect(carol.locator("#conn-status")).to_have_attribute("data-state", "reconnecting")
    send(carol, "typed while the gateway was down")
    expect(messages(carol, "relay", "typed while the gateway was down")).to_have_attribute(
        "data-state", re.compile("^(queued|unknown)$")
    )
    meanwhile = [f"sent meanwhile {n}" for n in range(3)]
    for text in meanwhile:
        send(dave, text)
    expect(messages(dave, "relay", meanwhile[-1])).to_have_attribute("data-offset", re.compile(r"^\d+$"))
    carol.wait_for_timeout(500)  # lets the page try (and be refused by) B at least once more
    assert hold["refused"] >= 1
    expect(carol.locator("#conn-status")).to_have_attribute("data-state", "reconnecting")
    expect(messages(carol, "relay", meanwhile[0])).to_have_count(0)

    hold["on"] = False
    expect(carol.locator("#chat")).to_have_attribute("data-ws-url", gateway_b.ws_url)
    expect(carol.locator("#conn-status")).to_have_attribute("data-state", "online")
    send(carol, "back online")
    expect(messages(dave, "relay", "back online")).to_have_count(1)
    expect(messages(carol, "relay", "back online")).to_have_count(1)

    carol.wait_for_timeout(1500)  # a duplicate, if any, would arrive by now
    everything = ["before the kill", "typed while the gateway was down", *meanwhile, "back online"]
    for page in (carol, dave):
        for text in everything:
            expect(messages(page, "relay", text)).to_have_count(1)
        expect(page.locator("#log-relay .msg")).to_have_count(len(everything))
    expect(carol.locator("#log-relay .msg.is-failed")).to_have_count(0)
    # The re-join asked for what came after the last message shown before the kill.
    last_before_kill = int(messages(carol, "relay", "before the kill").get_attribute("data-offset") or "")
    assert joins[0] == {"type": "join", "room": "relay"}
    assert joins[-1] == {"type": "join", "room": "relay", "since": last_before_kill}
    screenshot(carol)
    assert page_log.unexpected(WS_FAILED) == []


def test_several_rooms_keyboard_and_phone_width(gateway_factory, topic, new_page, page_log, screenshot):
    """On a phone-sized screen the page fits, rooms sit in a tab strip, and the keyboard
    does everything: add a room, send with Enter, switch rooms with Alt+Arrow."""
    gateway = gateway_factory(topic)
    page = open_chat(
        new_page(name="fay", viewport=PHONE, is_mobile=True, has_touch=True), f"{gateway.http}/r/kitchen/"
    )

    send(page, "first room")
    page.locator("#add-room-input").fill("garden")
    page.locator("#add-room-input").press("Enter")
    expect(page).to_have_url(re.compile(r"/r/garden/$"))
    expect(page.locator("#message-input")).to_be_focused()
    page.keyboard.type("second room, typed with the keyboard")
    page.keyboard.press("Enter")
    expect(messages(page, "garden", "second room, typed with the keyboard")).to_have_count(1)
    expect(page.locator("#log-kitchen")).to_be_hidden()

    page.keyboard.press("Alt+ArrowUp")
    expect(page).to_have_url(re.compile(r"/r/kitchen/$"))
    expect(messages(page, "kitchen", "first room")).to_be_visible()

    # A message in the other room shows as unread on its tab.
    other = open_chat(new_page(name="gus"), f"{gateway.http}/r/garden/")
    send(other, "psst, in the garden")
    expect(page.locator('.room-tab[data-room="garden"] .badge')).to_have_text("1")

    # A bad room id is explained, not sent.
    page.locator("#add-room-input").fill("Not A Room!")
    page.locator("#add-room-input").press("Enter")
    expect(page.locator("#add-room-error")).to_contain_text("1-64 characters")

    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    expect(page.locator("#message-input")).to_be_in_viewport()
    expect(page.locator('.room-tab[data-room="garden"]')).to_be_in_viewport()
    page.locator("#add-room-input").fill("")
    page.locator("#message-input").focus()
    screenshot(page)
    assert page_log.unexpected() == []


def test_page_follows_a_graceful_gateway_restart(gateway_factory, topic, new_page, page_log, screenshot):
    """SIGTERM drains gateway A, which closes sockets with 1012: the page moves to B at
    once (no backoff), keeps its rooms, and a message typed right then arrives once."""
    gateway_a = gateway_factory(topic)
    gateway_b = gateway_factory(topic)
    gateways = quote(f"{gateway_a.ws_url},{gateway_b.ws_url}", safe="")
    page = open_chat(new_page(name="hugo"), f"{gateway_a.http}/r/restart/?gateways={gateways}")
    page.locator("#add-room-input").fill("second")
    page.locator("#add-room-input").press("Enter")
    page.locator('.room-tab[data-room="restart"] .room-tab-open').click()
    send(page, "before the restart")
    expect(messages(page, "restart", "before the restart")).to_have_attribute("data-state", "shown")

    gateway_a.terminate()
    assert gateway_a.wait(30) == 0
    expect(page.locator("#chat")).to_have_attribute("data-ws-url", gateway_b.ws_url)
    expect(page.locator("#chat")).to_have_attribute("data-last-close-code", "1012")
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "online")
    send(page, "after the restart")
    expect(messages(page, "restart", "after the restart")).to_have_attribute("data-state", "shown")
    expect(page.locator(".room-tab")).to_have_count(2)
    expect(messages(page, "restart", "before the restart")).to_have_count(1)
    screenshot(page)
    assert page_log.unexpected(WS_FAILED) == []


def test_own_messages_confirmed_after_refused_ones_keep_the_rooms_order(
    gateway_factory, topic, new_page, page_log, screenshot
):
    """A burst past the rate limit leaves refused messages (with Retry); a message accepted
    after them, and messages of others, show in the same order for sender and reader."""
    gateway = gateway_factory(topic, CHAT_SEND_RATE="0.5", CHAT_SEND_BURST="3")
    alice = open_chat(new_page(name="alice"), f"{gateway.http}/r/order-room/")
    bob = open_chat(new_page(name="bob"), f"{gateway.http}/r/order-room/")
    for n in range(8):
        send(alice, f"f{n}")
    refused = alice.locator("#log-order-room .msg.is-failed")
    expect(refused.first).to_be_visible()
    expect(refused).to_have_count(5)
    time.sleep(2.5)  # the rate limit refills one token
    send(alice, "late-ok")
    expect(messages(bob, "order-room", "late-ok")).to_have_count(1)
    send(bob, "bob-after")
    expect(messages(alice, "order-room", "bob-after")).to_have_count(1)
    confirmed = "#log-order-room .msg:not(.is-local) .msg-text"
    seen_by_alice = alice.locator(confirmed).all_text_contents()
    assert seen_by_alice == bob.locator(confirmed).all_text_contents()
    assert seen_by_alice[-2:] == ["late-ok", "bob-after"]
    # The refused ones wait below every confirmed message.
    order = alice.locator("#log-order-room .msg").evaluate_all(
        "items => items.map(i => i.classList.contains('is-failed'))"
    )
    assert order[-refused.count() :] == [True] * refused.count()
    screenshot(alice)
    assert page_log.unexpected() == []
