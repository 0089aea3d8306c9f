"""Fixtures for the browser tests: Debian's Chromium driven by Python Playwright (sync API).

Playwright cannot download its own browsers here, so it launches /usr/bin/chromium
(`apt-get install chromium`). Each test gets fresh browser contexts (no shared cookies or
localStorage), records console errors and uncaught page errors, and saves one screenshot
into tests.support.ARTIFACTS_DIR.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.browser.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    EXPECT_TIMEOUT_MS,
    PageLog,
    StaffAccount,
)
from tests.support import ARTIFACTS_DIR, PROJECT_DIR

expect.set_options(timeout=EXPECT_TIMEOUT_MS)


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def chromium(playwright_instance: Playwright) -> Iterator[Browser]:
    browser = playwright_instance.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def page_log() -> Iterator[PageLog]:
    log = PageLog()
    yield log
    assert not log.page_errors, f"uncaught errors in the page: {log.page_errors}"


NewPage = Callable[..., Page]


@pytest.fixture
def new_page(chromium: Browser, page_log: PageLog) -> Iterator[NewPage]:
    """`new_page(name=None, viewport=DESKTOP)`: a page in its own fresh browser context.

    With `name`, the nickname is already remembered (as after a first visit), so the page
    does not ask for it.
    """
    contexts: list[BrowserContext] = []

    def make(name: str | None = None, viewport: dict[str, int] | None = None, **options: Any) -> Page:
        context = chromium.new_context(viewport=viewport or DESKTOP, **options)
        if name is not None:
            context.add_init_script(f"window.localStorage.setItem('ephemchat.name', {name!r});")
        contexts.append(context)
        return page_log.watch(context.new_page())

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page], Path]:
    """Save one screenshot named after the test into ARTIFACTS_DIR."""

    def save(page: Page, *, full_page: bool = False) -> Path:
        ARTIFACTS_DIR.mkdir(exist_ok=True)
        path = ARTIFACTS_DIR / f"browser-{request.node.name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return save


@pytest.fixture(scope="session")
def staff_account(gateway_database_url: str) -> StaffAccount:
    """A superuser in the gateways' shared database."""
    account = StaffAccount(username="staff", password=secrets.token_urlsafe(16))
    env = {
        **os.environ,
        "DATABASE_URL": gateway_database_url,
        "DJANGO_SETTINGS_MODULE": "ephemchat.settings",
        "DJANGO_SUPERUSER_PASSWORD": account.password,
    }
    subprocess.run(
        [sys.executable, "manage.py", "createsuperuser", "--noinput", "--username", account.username,
         "--email", "staff@example.com"],
        cwd=PROJECT_DIR, env=env, check=True, capture_output=True,
    )  # fmt: skip
    return account
