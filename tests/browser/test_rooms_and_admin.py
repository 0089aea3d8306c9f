"""The room browser and the staff admin in real Chromium, against a real gateway."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from rooms.locks import LOCK_CACHE_S
from tests.browser.helpers import STATS_UNAVAILABLE, admin_login, messages, open_chat, send, unique_room

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.kafka]

STAT_TEXT = re.compile(r"^(–|\d+(\.\d)?)$")  # "–" until the cluster stats endpoint answers


def create_room(page, base_url: str, room_id: str, *, title: str, description: str, unlisted: bool) -> None:
    page.goto(f"{base_url}/")
    form = page.locator("form.create-form")
    form.get_by_label("Room id").fill(room_id)
    form.get_by_label("Title").fill(title)
    form.get_by_label("Description").fill(description)
    form.get_by_label("Unlisted" if unlisted else "Public", exact=False).check()
    form.get_by_role("button", name="Create room").click()
    expect(page).to_have_url(f"{base_url}/r/{room_id}/")


def test_room_creation_and_the_public_list(gateway_factory, topic, new_page, page_log, screenshot):
    """A created public room is listed and searchable; an unlisted one is not listed but
    opens by its link; HTML in titles shows as text."""
    gateway = gateway_factory(topic)
    page = new_page(name="hana")
    public_id = unique_room("garden")
    hidden_id = unique_room("hideout")

    create_room(
        page,
        gateway.http,
        public_id,
        title="Garden club",
        description="Seeds, soil and swaps.",
        unlisted=False,
    )
    expect(page.locator("#room-title")).to_have_text("Garden club")
    expect(page.get_by_text("created. Share the link")).to_be_visible()
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "online")

    create_room(
        page,
        gateway.http,
        hidden_id,
        title="<img src=x onerror=window.__xss=1>",
        description="<b>secret</b>",
        unlisted=True,
    )
    expect(page.locator("#room-title")).to_have_text("<img src=x onerror=window.__xss=1>")
    expect(page.locator("#room-description")).to_have_text("<b>secret</b>")

    # A bad id is explained next to the field.
    page.goto(f"{gateway.http}/")
    page.locator("form.create-form").get_by_label("Room id").fill("Not valid!")
    page.get_by_role("button", name="Create room").click()
    expect(page.locator("#id_room_id_error")).to_contain_text("Not a valid room id")
    expect(page.locator("#id_room_id")).to_have_attribute("aria-invalid", "true")

    page.goto(f"{gateway.http}/")
    row = page.locator(f'.room-row[data-room="{public_id}"]')
    expect(row).to_be_visible()
    expect(row.locator(".room-title")).to_have_text("Garden club")
    expect(row.locator(".room-description")).to_have_text("Seeds, soil and swaps.")
    expect(row.locator('[data-stat="members"]')).to_have_text(STAT_TEXT)
    expect(row.locator('[data-stat="rate"]')).to_have_text(STAT_TEXT)
    expect(page.locator(f'[data-room="{hidden_id}"]')).to_have_count(0)

    page.get_by_role("searchbox", name="Search rooms").fill(public_id)
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".room-row")).to_have_count(1)
    page.get_by_role("searchbox", name="Search rooms").fill(hidden_id)
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".room-row")).to_have_count(0)
    expect(page.get_by_text("No public room matches")).to_be_visible()

    # The unlisted room opens by its link, and works.
    open_chat(page, f"{gateway.http}/r/{hidden_id}/")
    send(page, "only people with the link")
    expect(messages(page, hidden_id, "only people with the link")).to_have_attribute(
        "data-offset", re.compile(r"\d")
    )
    assert page.evaluate("typeof window.__xss") == "undefined"

    page.goto(f"{gateway.http}/?q={public_id[:6]}")
    screenshot(page)
    assert page_log.unexpected(STATS_UNAVAILABLE) == []


def test_admin_requires_a_staff_login(gateway_factory, topic, new_page, staff_account, page_log, screenshot):
    """Anonymous visitors to /admin/ land on the login page; staff get the admin."""
    gateway = gateway_factory(topic)
    page = new_page()
    for path in ("/admin/", "/admin/rooms/room/"):
        page.goto(f"{gateway.http}{path}")
        expect(page).to_have_url(re.compile(r"/admin/login/\?next=" + re.escape(path) + "$"))
        expect(page.get_by_role("button", name="Log in")).to_be_visible()

    page.get_by_label("Username").fill(staff_account.username)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".errornote")).to_be_visible()

    admin_login(page, gateway.http, staff_account)
    expect(page.get_by_role("link", name="Rooms", exact=True)).to_be_visible()
    expect(page.locator("#site-name")).to_have_text("ephemchat admin")
    screenshot(page)
    assert page_log.unexpected() == []


def test_a_locked_room_refuses_sends_with_a_visible_message(
    gateway_factory, topic, new_page, staff_account, page_log, screenshot
):
    """Staff lock a room in the admin; the next message in it is refused (room_locked),
    shown as failed with the reason in plain words, and the room shows its lock."""
    gateway = gateway_factory(topic)
    room_id = unique_room("townhall")
    staff = new_page()
    admin_login(staff, gateway.http, staff_account)
    create_room(staff, gateway.http, room_id, title="Town hall", description="", unlisted=False)

    user = open_chat(new_page(name="ivan"), f"{gateway.http}/r/{room_id}/")
    send(user, "before the lock")
    expect(messages(user, room_id, "before the lock")).to_have_attribute("data-offset", re.compile(r"\d"))

    staff.goto(f"{gateway.http}/admin/rooms/room/?q={room_id}")
    staff.locator(f'input[name="_selected_action"][value="{room_id}"]').check()
    staff.locator('select[name="action"]').select_option("lock_rooms")
    staff.get_by_role("button", name="Go").click()
    expect(staff.get_by_text("1 room locked.")).to_be_visible()
    user.wait_for_timeout(LOCK_CACHE_S * 1000 + 500)  # each gateway caches a room's lock this long

    send(user, "after the lock")
    refused = messages(user, room_id, "after the lock")
    expect(refused).to_have_attribute("data-state", "failed")
    expect(refused.locator(".msg-error")).to_have_text("This room is locked: new messages are refused.")
    expect(refused.get_by_role("button", name="Retry")).to_be_visible()
    expect(user.locator("#room-banner")).to_contain_text("locked")
    screenshot(user)
    assert page_log.unexpected() == []


def test_admin_metrics_page_shows_live_cluster_figures(
    gateway_factory, topic, new_page, staff_account, page_log, screenshot
):
    """Staff open the live metrics page from the admin index: it shows both gateways, the
    connections on them and draws its charts; anonymous visitors are sent to the login."""
    gateways = [gateway_factory(topic), gateway_factory(topic)]
    chatters = [
        open_chat(new_page(name=f"m{i}"), f"{g.http}/r/metrics-room/") for i, g in enumerate(gateways)
    ]
    send(chatters[0], "a message for the figures")

    anonymous = new_page()
    anonymous.goto(f"{gateways[1].http}/admin/metrics/")
    expect(anonymous).to_have_url(re.compile(r"/admin/login/\?next=/admin/metrics/$"))

    page = new_page()
    admin_login(page, gateways[1].http, staff_account)
    page.get_by_role("link", name="Live metrics").click()
    expect(page).to_have_url(re.compile(r"/admin/metrics/$"))
    expect(page.locator('[data-total="count"]')).to_have_text("2", timeout=30_000)
    expect(page.locator("#gateway-rows tr")).to_have_count(2)
    expect(page.locator('[data-total="connections"]')).not_to_have_text("–")
    expect(page.locator("#room-rows")).to_contain_text("metrics-room")
    expect(page.locator("#metrics-status")).to_contain_text("Updated")
    screenshot(page, full_page=True)
    assert page_log.unexpected() == []
