"""The staff admin for rooms: staff only; list, search, filters; lock, unlock, close, delete."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from rooms.models import Room, Visibility
from rooms.services import room_close, room_create, room_is_locked, room_lock

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/rooms/room/"


def _action(admin_client, action, *room_ids):
    return admin_client.post(CHANGELIST, {"action": action, "_selected_action": list(room_ids)}, follow=True)


@pytest.mark.parametrize("path", ["/admin/", CHANGELIST, "/admin/rooms/room/add/"])
def test_anonymous_users_are_sent_to_the_login_page(client, path):
    """Everything under /admin/ needs a staff login."""
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


def test_signed_in_users_who_are_not_staff_are_sent_to_the_login_page(client):
    """A normal account is not enough."""
    client.force_login(get_user_model().objects.create_user("eve", password="x-long-password"))
    response = client.get(CHANGELIST)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_admin_index_lists_rooms_with_ephemchat_branding(admin_client):
    """The index shows the Rooms model under our own header."""
    body = admin_client.get("/admin/").content.decode()
    assert "ephemchat admin" in body and CHANGELIST in body


def test_admin_index_links_the_live_metrics_page(admin_client):
    """The admin index links the cluster's live metrics page."""
    body = admin_client.get("/admin/").content.decode()
    assert "ephemchat-metrics-link" in body and 'href="/admin/metrics/"' in body


def test_metrics_page_and_data_are_staff_only(client, admin_client):
    """Anonymous visitors are sent to the login page; staff get the page (data: 503 until
    the gateway's stats run, which only happens in a gateway process)."""
    for url in ("/admin/metrics/", "/admin/metrics/data"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    page = admin_client.get("/admin/metrics/")
    assert page.status_code == 200 and b"Live metrics" in page.content
    assert admin_client.get("/admin/metrics/data").status_code == 503


def test_changelist_search_and_filters(admin_client):
    """Search by id/title/description, and filter by status, visibility and lock."""
    room_create(room_id="lobby", title="Lobby")
    room_create(room_id="secret", title="Back room", visibility=Visibility.UNLISTED)
    room_lock(room=room_create(room_id="frozen", description="ice"))
    room_close(room=room_create(room_id="over"))

    def ids(**params):
        response = admin_client.get(CHANGELIST, params)
        assert response.status_code == 200
        return sorted(room.id for room in response.context["cl"].result_list)

    assert ids() == ["frozen", "lobby", "over", "secret"]
    assert ids(q="ice") == ["frozen"]
    assert ids(q="back") == ["secret"]
    assert ids(status="closed") == ["over"]
    assert ids(status="open") == ["frozen", "lobby", "secret"]
    assert ids(visibility="unlisted") == ["secret"]
    assert ids(is_locked__exact="1") == ["frozen"]


def test_lock_and_unlock_actions(admin_client):
    """The lock action makes room_is_locked true; unlock makes it false again."""
    room_create(room_id="a")
    room_create(room_id="b")
    response = _action(admin_client, "lock_rooms", "a", "b")
    assert "2 rooms locked." in response.content.decode()
    assert room_is_locked(room_id="a") and room_is_locked(room_id="b")
    _action(admin_client, "unlock_rooms", "a")
    assert not room_is_locked(room_id="a") and room_is_locked(room_id="b")


def test_close_and_reopen_actions(admin_client):
    """Closing hides a room and refuses sends; reopening undoes it."""
    room_create(room_id="town")
    assert "1 room closed." in _action(admin_client, "close_rooms", "town").content.decode()
    room = Room.objects.get(pk="town")
    assert room.is_closed and room_is_locked(room_id="town")
    _action(admin_client, "reopen_rooms", "town")
    assert not Room.objects.get(pk="town").is_closed


def test_delete_action_removes_the_rows(admin_client):
    """Staff can delete rooms (the id then works again as a room without a row)."""
    room_create(room_id="doomed")
    response = admin_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": ["doomed"], "post": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert not Room.objects.filter(pk="doomed").exists()
    assert not room_is_locked(room_id="doomed")


def test_add_form_validates_the_id_and_records_the_creator(admin_client, admin_user):
    """Adding through the admin applies the room id rule and stores who created it."""
    bad = admin_client.post("/admin/rooms/room/add/", {"id": "Not Valid", "visibility": "public"})
    assert bad.status_code == 200 and bad.context["adminform"].form.errors["id"]
    good = admin_client.post("/admin/rooms/room/add/", {"id": "staff-room", "visibility": "public"})
    assert good.status_code == 302
    assert Room.objects.get(pk="staff-room").created_by == admin_user


def test_the_room_id_cannot_be_changed_after_creation(admin_client):
    """The id is the Kafka key and every link to the room: read-only once set."""
    room_create(room_id="fixed")
    form = admin_client.get("/admin/rooms/room/fixed/change/").context["adminform"].form
    assert "id" not in form.fields and "title" in form.fields
    admin_client.post(
        "/admin/rooms/room/fixed/change/", {"id": "renamed", "title": "New", "visibility": "public"}
    )
    assert Room.objects.filter(pk="fixed", title="New").exists()
    assert not Room.objects.filter(pk="renamed").exists()


def test_view_on_site_links_to_the_chat_page(admin_client):
    """The change page's "View on site" leads to /r/<id>/ (through get_absolute_url)."""
    import re

    room_create(room_id="linked")
    body = admin_client.get("/admin/rooms/room/linked/change/").content.decode()
    match = re.search(r'href="(/admin/r/\d+/linked/)"', body)
    assert match is not None
    response = admin_client.get(match.group(1))
    assert response.status_code == 302 and response["Location"].endswith("/r/linked/")
