"""The pure helpers of static/ephemchat/*.js, run in Chromium without a server."""

from __future__ import annotations

import json

import pytest

from tests.support import PROJECT_DIR

pytestmark = pytest.mark.browser

STATIC = PROJECT_DIR / "static" / "ephemchat"


@pytest.fixture
def helpers_page(new_page, page_log, screenshot):
    """A blank page with both scripts loaded (they start nothing without their page's markup).
    Its screenshot is saved after the test; its console must stay clean."""
    page = new_page()
    page.set_content(
        "<!doctype html><html lang=en><title>helpers</title><body><pre id=out></pre></body></html>"
    )
    page.add_script_tag(path=str(STATIC / "chat.js"))
    page.add_script_tag(path=str(STATIC / "home.js"))
    yield page
    page.evaluate("name => document.getElementById('out').textContent = name + ': checked'", page.url)
    screenshot(page)
    assert page_log.unexpected() == []


def js(page, expression: str, *args):
    return page.evaluate(expression, *args) if args else page.evaluate(expression)


def test_backoff_grows_exponentially_with_jitter_and_a_cap(helpers_page):
    """Delay for attempt n is within [step/2, step] where step = min(cap, base * 2^n)."""
    page = helpers_page
    lows = js(page, "[0,1,2,3,4,5,10,30].map(n => EphemChat.backoffDelay(n, EphemChat.BACKOFF, () => 0))")
    highs = js(page, "[0,1,2,3,4,5,10,30].map(n => EphemChat.backoffDelay(n, EphemChat.BACKOFF, () => 1))")
    assert lows == [250, 500, 1000, 2000, 4000, 7500, 7500, 7500]
    assert highs == [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]
    spread = js(
        page, "Array.from({length: 200}, () => EphemChat.backoffDelay(3, EphemChat.BACKOFF, Math.random))"
    )
    assert all(2000 <= d <= 4000 for d in spread) and len(set(spread)) > 20


def test_remaining_time_is_short_and_rounds_up(helpers_page):
    """Seconds below a minute, m:ss below an hour, then hours and minutes; never negative."""
    page = helpers_page
    remaining = js(page, "[0, -5, 1, 999, 1000, 1001, 59000, 60000, 65000, 119001, 3600000, 7380000]"
                   ".map(EphemChat.formatRemaining)")  # fmt: skip
    assert remaining == [
        "0s",
        "0s",
        "1s",
        "1s",
        "1s",
        "2s",
        "59s",
        "1:00",
        "1:05",
        "2:00",
        "1h 00m",
        "2h 03m",
    ]


def test_fresh_messages_drops_replays_by_offset(helpers_page):
    """Only offsets above the last one shown pass, in order; the last offset advances."""
    result = js(
        helpers_page,
        "([last, msgs]) => EphemChat.freshMessages(last, msgs)",
        [5, [{"offset": 3}, {"offset": 5}, {"offset": 6}, {"offset": 6}, {"offset": 9}, {"offset": "10"}]],
    )
    assert result == {"fresh": [{"offset": 6}, {"offset": 9}], "lastOffset": 9}
    assert js(helpers_page, "EphemChat.freshMessages(-1, [])") == {"fresh": [], "lastOffset": -1}


def test_gateway_urls_accept_only_the_pages_own_host(helpers_page):
    """?gateways= lists ws URLs to rotate through; other hosts and bad URLs are ignored."""

    def urls(search: str, protocol: str = "http:") -> list[str]:
        loc = {"protocol": protocol, "host": "chat.example:8000", "hostname": "chat.example"}
        return js(helpers_page, "([s, loc]) => EphemChat.gatewayUrls(s, loc)", [search, loc])

    assert urls("") == ["ws://chat.example:8000/ws/chat/"]
    assert urls("", "https:") == ["wss://chat.example:8000/ws/chat/"]
    listed = "?gateways=ws://chat.example:8001/ws/chat/,ws://evil.example/ws/chat/,nonsense,ws://chat.example:8002/ws/chat/"
    assert urls(listed) == ["ws://chat.example:8001/ws/chat/", "ws://chat.example:8002/ws/chat/"]
    assert urls("?gateways=ws://evil.example/ws/chat/") == ["ws://chat.example:8000/ws/chat/"]
    # An https page never downgrades to ws.
    assert urls("?gateways=ws://chat.example:8001/ws/chat/", "https:") == ["wss://chat.example:8000/ws/chat/"]


def test_clock_offset_ignores_latency_sized_differences(helpers_page):
    """The best (largest) sample is the offset, unless it is small enough to be latency."""
    offset = "s => EphemChat.clockOffset(s)"
    assert js(helpers_page, offset, []) == 0
    assert js(helpers_page, offset, [-40, -300, -1200]) == 0
    assert js(helpers_page, offset, [-65000, -64000, -64900]) == -64000
    assert js(helpers_page, offset, [30000, 29000]) == 30000


def test_names_and_error_words(helpers_page):
    """Names follow the server's rule; every error code has plain words."""
    names = js(
        helpers_page,
        "xs => xs.map(EphemChat.normalizeName)",
        ["  ann ", "", "   ", "x" * 33, "tab\there", "é" * 32],
    )
    assert names == ["ann", None, None, None, None, "é" * 32]
    limits = {"max_text_chars": 2000, "max_rooms": 20}
    words = js(
        helpers_page,
        "([codes, limits]) => codes.map(c => EphemChat.errorText(c, limits))",
        [["rate_limited", "too_long", "room_locked", "too_many_rooms", "unavailable", "mystery"], limits],
    )
    assert words[0].startswith("Slow down")
    assert "2000 characters" in words[1]
    assert words[2] == "This room is locked: new messages are refused."
    assert "20 rooms" in words[3]
    assert "Not delivered" in words[4]
    assert words[5] == "Something went wrong (mystery)."


def test_stats_formatting(helpers_page):
    """Message rates show per minute; missing or bad figures show a dash."""
    rates = js(helpers_page, "xs => xs.map(EphemHome.formatRate)", [0, 0.005, 0.5, 2.26, -1, None, "3"])
    assert rates == ["0", "0.3", "30", "136", "–", "–", "–"]
    counts = js(helpers_page, "xs => xs.map(EphemHome.formatCount)", [0, 3, 2.6, -1, None])
    assert counts == ["0", "3", "3", "–", "–"]
    assert json.dumps(js(helpers_page, "typeof EphemChat.isValidRoomId")) == '"function"'
