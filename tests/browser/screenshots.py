"""Make the README screenshots in docs/screenshots/ from a real gateway, Kafka and Chromium.

    .venv/bin/python -m tests.browser.screenshots [--out docs/screenshots]

Uses KAFKA_BOOTSTRAP_SERVERS when set, else starts the project's local broker. Rooms are
created through the services, messages are typed by real browser pages. If the cluster
stats endpoint (/api/rooms/stats) does not count the open pages within STATS_WAIT_S, the
room browser's figures are filled from a fixed example answer (and the script says so).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, Route, expect, sync_playwright

from kafka_bridge.local_broker import LocalBroker, free_port_pair
from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE, open_chat, send
from tests.support import PROJECT_DIR, GatewayProcess, http_get, unique_topic

ROOMS = [
    ("lobby", "The lobby", "Say hello. Everything here is gone in two minutes."),
    ("book-club", "Book club", "This month: The Left Hand of Darkness."),
    ("gardening", "Gardening", "Seeds, soil, swaps and slugs."),
    ("python-help", "Python help", "Stuck on something? Paste less, describe more."),
    ("night-owls", "Night owls", "For whoever is still up."),
]
STATS_WAIT_S = 30.0  # gateways publish their figures every few seconds
EXAMPLE_STATS = {
    "rooms": {
        "lobby": {"members": 14, "rate": 0.35},
        "book-club": {"members": 6, "rate": 0.08},
        "gardening": {"members": 3, "rate": 0.02},
        "python-help": {"members": 9, "rate": 0.2},
        "night-owls": {"members": 2, "rate": 0},
    },
    "gateways": 3,
}


@contextmanager
def kafka() -> Iterator[str]:
    if bootstrap := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield bootstrap
        return
    port, controller = free_port_pair()
    data_dir = Path(tempfile.mkdtemp(prefix="ephemchat-shots-kafka-"))
    broker = LocalBroker(port=port, controller_port=controller, data_dir=data_dir)
    try:
        yield broker.start(timeout=120)
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def seeded_database(folder: Path) -> str:
    url = f"sqlite:///{folder / 'shots.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "ephemchat.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=PROJECT_DIR, env=env, check=True)
    script = (
        "from rooms.services import room_create\n"
        f"for room_id, title, description in {ROOMS!r}:\n"
        "    room_create(room_id=room_id, title=title, description=description)\n"
    )
    subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=PROJECT_DIR, env=env, check=True)
    return url


def live_stats_ready(base: str, timeout: float = STATS_WAIT_S) -> bool:
    """True once /api/rooms/stats counts the members of the open pages."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = http_get(f"{base}/api/rooms/stats")
        if status == 200 and json.loads(body).get("rooms", {}).get("lobby", {}).get("members"):
            return True
        time.sleep(0.5)
    return False


def chat_page(browser, base: str, room: str, name: str, viewport=DESKTOP) -> Page:
    context = browser.new_context(viewport=viewport, device_scale_factor=2 if viewport is PHONE else 1)
    context.add_init_script(f"window.localStorage.setItem('ephemchat.name', {name!r});")
    return open_chat(context.new_page(), f"{base}/r/{room}/")


def make(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="ephemchat-shots-"))
    saved: list[Path] = []
    with kafka() as bootstrap, sync_playwright() as playwright:
        gateway = GatewayProcess(
            bootstrap=bootstrap,
            topic=unique_topic("shots"),
            env_overrides={"DATABASE_URL": seeded_database(folder)},
        ).start()
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            base = gateway.http
            # The conversation: typed by real pages, a few seconds apart so countdowns differ.
            maya = chat_page(browser, base, "lobby", "maya")
            jon = chat_page(browser, base, "lobby", "jon")
            priya = chat_page(browser, base, "book-club", "priya")
            lines = [
                (maya, "morning all"),
                (jon, "morning! is the standup moved to 10?"),
                (maya, "yes, 10:00. Same link as yesterday"),
                (jon, "perfect, thanks"),
                (jon, "anyone tried the new ramen place on 5th?"),
                (maya, "yes! get the spicy miso, skip the gyoza"),
            ]
            for page, text in lines:
                send(page, text)
                time.sleep(2.5)

            # The main picture: two rooms in the sidebar, one with unread messages.
            me = chat_page(browser, base, "lobby", "sam")
            me.locator("#add-room-input").fill("book-club")
            me.locator("#add-room-input").press("Enter")
            me.locator("#message-input").press("Alt+ArrowUp")
            expect(me).to_have_url(f"{base}/r/lobby/")
            send(priya, "chapter 4 spoilers below, you have been warned")
            send(priya, "I did not see that ending coming")
            expect(me.locator('.room-tab[data-room="book-club"] .badge')).to_have_text("2")
            send(me, "ramen it is. who's in at 12:30?")
            expect(me.locator("#log-lobby .msg").last).to_have_attribute("data-state", "shown")
            time.sleep(1.2)
            saved.append(out / "chat-two-rooms.png")
            me.screenshot(path=str(saved[-1]))

            # The phone: the same room at 390 px.
            phone = chat_page(browser, base, "lobby", "ana", viewport=PHONE)
            phone.locator("#add-room-input").fill("book-club")
            phone.locator("#add-room-input").press("Enter")
            phone.locator('.room-tab[data-room="lobby"] .room-tab-open').click()
            send(phone, "count me in!")
            expect(phone.locator("#log-lobby .msg").last).to_have_attribute("data-state", "shown")
            phone.locator("#message-input").blur()
            time.sleep(1.2)
            saved.append(out / "phone.png")
            phone.screenshot(path=str(saved[-1]))

            # The room browser, with live figures (real ones when the endpoint answers).
            home = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
            if not live_stats_ready(base):
                print("cluster stats did not answer: the room browser shows example figures")

                def example(route: Route) -> None:
                    route.fulfill(status=200, content_type="application/json", body=json.dumps(EXAMPLE_STATS))

                home.route("**/api/rooms/stats", example)
            home.goto(f"{base}/")
            expect(home.locator('.room-row[data-room="lobby"] [data-stat="members"]')).not_to_have_text("–")
            saved.append(out / "room-browser.png")
            home.screenshot(path=str(saved[-1]))
        finally:
            browser.close()
            gateway.stop()
            shutil.rmtree(folder, ignore_errors=True)
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "docs" / "screenshots")
    for path in make(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
