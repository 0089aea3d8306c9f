"""Helpers for the browser tests: Chromium settings, console log, and page actions."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import ConsoleMessage, Page, expect

CHROMIUM = Path(os.environ.get("EPHEMCHAT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Generous: machines are shared and noisy. A timeout here means a real failure.
EXPECT_TIMEOUT_MS = 15_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@dataclass
class PageLog:
    """Console errors and uncaught exceptions of the pages of one test."""

    errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> Page:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(f"{page.url}: {error}"))
        return page

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} @ {message.location.get('url', '')}")

    def unexpected(self, *allowed: str) -> list[str]:
        """Console errors not matching any of the `allowed` regular expressions."""
        return [e for e in self.errors if not any(re.search(pattern, e) for pattern in allowed)]


# The room browser polls /api/rooms/stats: 404 where it does not exist, 503 while the
# cluster stats warm up. The page shows "–" then; Chromium still logs the failed fetch.
STATS_UNAVAILABLE = r"status of (404|503) .* @ \S*/api/rooms/stats$"


@dataclass(frozen=True)
class StaffAccount:
    username: str
    password: str


def unique_room(prefix: str) -> str:
    """A room id no other test uses (the database is shared for the session)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def admin_login(page: Page, base_url: str, account: StaffAccount, next_path: str = "/admin/") -> None:
    page.goto(f"{base_url}/admin/login/?next={next_path}")
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(next_path) + "$"))


def open_chat(page: Page, url: str) -> Page:
    """Open a chat page and wait until it is connected."""
    page.goto(url)
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "online")
    return page


def send(page: Page, text: str) -> None:
    """Type a message in the composer and press Enter."""
    box = page.locator("#message-input")
    box.fill(text)
    box.press("Enter")


def messages(page: Page, room: str, text: str | None = None) -> Any:
    """Locator for the messages shown in `room` (optionally with exactly this text)."""
    items = page.locator(f"#log-{room} .msg")
    if text is not None:
        items = items.filter(has=page.locator(".msg-text", has_text=re.compile("^" + re.escape(text) + "$")))
    return items
