"""Cluster-wide stats: every gateway publishes its figures to Kafka and any gateway shows
the totals of all of them (issue: cluster-wide live stats)."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

import pytest

from tests.support import PROJECT_DIR, ChatClient, http_get, post_paced

pytestmark = pytest.mark.e2e

FAST = {"CHAT_SEND_RATE": "1000", "CHAT_SEND_BURST": "1000"}
STAFF = f"stats-staff-{uuid.uuid4().hex[:8]}"  # the gateways' database is shared by the session


def manage(database_url: str, code: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "ephemchat.settings"}
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=PROJECT_DIR, env=env, check=True)


def staff_opener(base: str) -> urllib.request.OpenerDirector:
    """A cookie-keeping client logged in to the admin as staff."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(f"{base}/admin/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    form = urllib.parse.urlencode(
        {
            "csrfmiddlewaretoken": token.group(1),
            "username": STAFF,
            "password": "s3cret-Pass!",
            "next": "/admin/",
        }
    ).encode()
    opener.open(
        urllib.request.Request(f"{base}/admin/login/", data=form, headers={"Referer": f"{base}/admin/login/"})
    )
    return opener


async def wait_for(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"not reached within {timeout} s; last: {last}")


async def test_cluster_totals_add_up_across_two_gateways(gateway_factory, gateway_database_url, topic):
    """Members on two gateways add up in the room browser's figures on either gateway;
    unlisted rooms are not shown; the staff metrics page lists both gateways."""
    manage(
        gateway_database_url,
        "from rooms.models import Room; from django.contrib.auth.models import User;"
        "Room.objects.get_or_create(id='stats-room');"
        f"User.objects.create_user('{STAFF}', password='s3cret-Pass!', is_staff=True)",
    )
    g0, g1 = gateway_factory(topic, **FAST), gateway_factory(topic, **FAST)
    clients = [await ChatClient.connect(g.ws_url) for g in (g0, g0, g0, g1, g1)]
    for client in clients:
        await client.join("stats-room")
    hidden = await ChatClient.connect(g1.ws_url)
    await hidden.join("not-listed")
    await post_paced(clients[0], "stats-room", [f"zebra-{n}" for n in range(20)])

    for gateway in (g0, g1):

        def members_seen(gateway=gateway):
            status, body = http_get(f"{gateway.http}/api/rooms/stats")
            stats = json.loads(body) if status == 200 else {}
            room = stats.get("rooms", {}).get("stats-room", {})
            return stats if stats.get("gateways") == 2 and room.get("members") == 5 else None

        stats = await wait_for(members_seen)
        assert "not-listed" not in stats["rooms"], "unlisted rooms are not listed"

    opener = staff_opener(g1.http)
    data = json.loads(opener.open(f"{g1.http}/admin/metrics/data").read())
    assert data["count"] == 2 and len(data["gateways"]) == 2
    assert data["totals"]["connections"] == 6
    assert sum(g["connections"] for g in data["gateways"].values()) == 6
    assert data["rooms"]["not-listed"]["members"] == 1, "staff see every room"
    assert "zebra" not in json.dumps(data), "stats never carry message text"
    page = opener.open(f"{g1.http}/admin/metrics/").read().decode()
    assert "Live metrics" in page
    anonymous = urllib.request.urlopen(f"{g1.http}/admin/metrics/")  # noqa: ASYNC210
    assert "/admin/login/" in anonymous.url, "the metrics page needs a staff login"
    for client in [*clients, hidden]:
        await client.close()
