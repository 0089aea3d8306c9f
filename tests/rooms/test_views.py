"""The room browser, the chat page and the room metadata endpoint (Django test client)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.urls import reverse

from rooms.models import Room, Visibility
from rooms.services import room_close, room_create, room_lock
from rooms.views import CONTENT_SECURITY_POLICY, ROOM_CREATIONS_PER_HOUR, ttl_in_words


@pytest.fixture(autouse=True)
def fresh_creation_limits():
    """The room-creation limit counts per client address in the cache: start each test clean."""
    cache.clear()
    yield
    cache.clear()


pytestmark = pytest.mark.django_db


def test_home_lists_public_rooms_with_a_data_room_row_each(client):
    """Public rooms are listed, each row carrying data-room for the live stats."""
    room_create(room_id="lobby", title="The lobby", description="Say hi")
    room_create(room_id="backroom", visibility=Visibility.UNLISTED)
    room_close(room=room_create(room_id="closed-one"))
    response = client.get("/")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-room="lobby"' in body and "The lobby" in body and "Say hi" in body
    assert "backroom" not in body and "closed-one" not in body
    assert 'data-stats-url="/api/rooms/stats"' in body


def test_home_search_narrows_the_list(client):
    """?q= filters the rooms by id, title or description."""
    room_create(room_id="cats", title="Cats")
    room_create(room_id="dogs", title="Dogs")
    body = client.get("/", {"q": "cat"}).content.decode()
    assert 'data-room="cats"' in body and 'data-room="dogs"' not in body
    assert "No public room matches" in client.get("/", {"q": "zebra"}).content.decode()


def test_home_escapes_room_metadata(client):
    """Titles and descriptions are escaped on the server side too."""
    room_create(room_id="xss", title="<script>alert(1)</script>", description="<img src=x onerror=alert(1)>")
    body = client.get("/").content.decode()
    assert "<script>alert(1)</script>" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_home_says_how_long_messages_live(client, settings):
    """The TTL from the chat config is shown in words."""
    assert "vanishes 2 minutes after" in client.get("/").content.decode()


def test_create_room_redirects_to_its_chat_page(client):
    """A valid form creates the room and opens its chat page."""
    response = client.post(
        "/", {"room_id": " Book-Club ", "title": "Books", "description": "", "visibility": "public"}
    )
    assert response.status_code == 302 and response["Location"] == "/r/book-club/"
    room = Room.objects.get(pk="book-club")
    assert (room.title, room.visibility, room.created_by) == ("Books", "public", None)


def test_create_unlisted_room_is_not_listed_afterwards(client):
    """An unlisted room works by link but stays off the list."""
    client.post("/", {"room_id": "backroom", "visibility": "unlisted"})
    assert Room.objects.get(pk="backroom").visibility == Visibility.UNLISTED
    assert 'data-room="backroom"' not in client.get("/").content.decode()
    assert client.get("/r/backroom/").status_code == 200


def test_create_room_records_a_signed_in_creator(client):
    """A signed-in user is stored as the creator."""
    user = get_user_model().objects.create_user("carol", password="x-long-password")
    client.force_login(user)
    client.post("/", {"room_id": "carols", "visibility": "public"})
    assert Room.objects.get(pk="carols").created_by == user


@pytest.mark.parametrize("room_id", ["has space", "-dash", "x" * 65, "ünïcode", ""])
def test_create_room_with_a_bad_id_shows_the_rule(client, room_id):
    """Invalid ids are refused and the form explains the rule next to the field."""
    response = client.post("/", {"room_id": room_id, "visibility": "public"})
    assert response.status_code == 200
    assert response.context["form"].errors["room_id"]
    assert 'aria-invalid="true"' in response.content.decode()
    assert not Room.objects.exists()


def test_create_room_with_a_taken_id_is_refused(client):
    """A taken id is refused and the first room is unchanged."""
    room_create(room_id="lobby", title="Original")
    response = client.post("/", {"room_id": "lobby", "title": "Impostor", "visibility": "public"})
    assert response.status_code == 200
    assert "taken" in " ".join(response.context["form"].errors["room_id"])
    assert Room.objects.get(pk="lobby").title == "Original"


def test_create_room_needs_a_csrf_token():
    """The create form is protected against cross-site posts."""
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/", {"room_id": "csrf", "visibility": "public"})
    assert response.status_code == 403
    assert not Room.objects.exists()


def test_go_redirects_to_any_valid_room(client):
    """/go/?room= opens a room by id without creating a row."""
    assert client.get("/go/", {"room": " Anything-1 "})["Location"] == "/r/anything-1/"
    assert not Room.objects.exists()
    response = client.get("/go/", {"room": "no spaces allowed"}, follow=True)
    assert response.redirect_chain[-1][0] == "/"
    assert "Not a valid room id" in response.content.decode()


def test_chat_page_works_for_any_valid_room_id(client):
    """A room without a row still has a chat page."""
    response = client.get("/r/brand-new/")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'data-room="brand-new"' in body and 'data-room-locked="false"' in body
    assert 'data-chat-url="/r/x-room-x/"' in body and 'data-meta-url="/api/rooms/x-room-x/meta"' in body
    assert "ephemchat/chat.js" in body


def test_chat_page_shows_the_room_metadata_and_lock_state(client):
    """Title, description and the locked flag reach the page."""
    room_lock(room=room_create(room_id="ops", title="Operations", description="Incidents"))
    body = client.get("/r/ops/").content.decode()
    assert 'data-room-title="Operations"' in body and 'data-room-description="Incidents"' in body
    assert 'data-room-locked="true"' in body


@pytest.mark.parametrize("path", ["/r/Lobby/", "/r/-x/", "/r/a%20b/", "/r/" + "a" * 65 + "/"])
def test_chat_page_is_404_for_invalid_room_ids(client, path):
    """Room ids from the URL follow the protocol rule."""
    assert client.get(path).status_code == 404


def test_chat_page_passes_the_account_name_of_signed_in_users(client):
    """Signed-in users chat under their account name; the page is told so."""
    client.force_login(get_user_model().objects.create_user("dana", password="x-long-password"))
    assert 'data-account-name="dana"' in client.get("/r/lobby/").content.decode()


def test_pages_send_a_strict_content_security_policy(client):
    """No inline script and nothing from other sites: the CSP says so."""
    for path in ("/", "/r/lobby/"):
        policy = client.get(path)["Content-Security-Policy"]
        assert policy == CONTENT_SECURITY_POLICY
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_room_meta_for_existing_and_missing_rooms(client):
    """The metadata endpoint answers for any valid id, with exists false when no row."""
    room_close(room=room_create(room_id="old", title="Old times", description="gone"))
    assert json.loads(client.get("/api/rooms/old/meta").content) == {
        "id": "old",
        "exists": True,
        "title": "Old times",
        "description": "gone",
        "locked": False,
        "closed": True,
        "url": "/r/old/",
    }
    missing = json.loads(client.get("/api/rooms/nobody-here/meta").content)
    assert (missing["exists"], missing["title"], missing["locked"]) == (False, "nobody-here", False)
    assert client.get("/api/rooms/BAD/meta").status_code == 404


def test_room_meta_does_not_shadow_the_stats_endpoint(client):
    """/api/rooms/stats is left for the cluster stats view (the room "stats" uses /meta)."""
    stats = client.get("/api/rooms/stats")
    # The stats view answers (unknown figures here: no gateway runs in a unit test).
    assert stats.status_code == 200 and json.loads(stats.content) == {"rooms": None, "gateways": None}
    assert json.loads(client.get("/api/rooms/stats/meta").content)["id"] == "stats"


def test_static_files_are_served_by_the_gateway(client):
    """The site works offline without a proxy: CSS, JS and the admin's assets are served."""
    for path in ("/static/ephemchat/app.css", "/static/ephemchat/chat.js", "/static/admin/css/base.css"):
        response = client.get(path)
        assert response.status_code == 200, path
        b"".join(response.streaming_content)
    from django.test import Client

    outside = Client(raise_request_exception=False).get("/static/../ephemchat/settings.py")
    assert outside.status_code in (400, 404)  # SuspiciousFileOperation or not found: never the file


def test_reverse_names():
    """The names other code and templates rely on."""
    assert reverse("rooms:home") == "/"
    assert reverse("rooms:chat", kwargs={"room": "lobby"}) == "/r/lobby/"
    assert reverse("rooms:meta", kwargs={"room": "lobby"}) == "/api/rooms/lobby/meta"


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (120, "2 minutes"),
        (60, "1 minute"),
        (5, "5 seconds"),
        (1, "1 second"),
        (90, "90 seconds"),
        (7200, "2 hours"),
    ],
)
def test_ttl_in_words(seconds, words):
    """The TTL is said in the largest whole unit."""
    assert ttl_in_words(seconds) == words


def test_room_creation_is_limited_per_client_address(client, admin_client):
    """Past ROOM_CREATIONS_PER_HOUR rooms from one address, creation is refused with a
    message and no row; staff are not limited."""
    for n in range(ROOM_CREATIONS_PER_HOUR):
        assert client.post("/", {"room_id": f"many-{n}", "visibility": "public"}).status_code == 302
    refused = client.post("/", {"room_id": "one-too-many", "visibility": "public"})
    assert refused.status_code == 200 and b"in the last hour" in refused.content
    assert not Room.objects.filter(pk="one-too-many").exists()
    assert admin_client.post("/", {"room_id": "staff-room", "visibility": "public"}).status_code == 302
