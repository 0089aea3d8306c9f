"""Room metadata: the model, its services and selectors. Chat text never reaches the DB."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from rooms.models import Room, Visibility
from rooms.selectors import room_get, rooms_list
from rooms.services import (
    RoomTaken,
    room_close,
    room_create,
    room_is_locked,
    room_lock,
    room_reopen,
    room_unlock,
)

pytestmark = pytest.mark.django_db


def test_room_create_stores_metadata_and_the_signed_in_creator():
    """room_create trims the text fields and records a signed-in creator."""
    user = get_user_model().objects.create_user("maker", password="x-long-password")
    room = room_create(room_id="book-club", title="  Books  ", description=" Monthly. ", created_by=user)
    stored = Room.objects.get(pk="book-club")
    assert (stored.title, stored.description, stored.created_by) == ("Books", "Monthly.", user)
    assert stored.visibility == Visibility.PUBLIC and not stored.is_locked and not stored.is_closed
    assert room.get_absolute_url() == "/r/book-club/"


def test_room_create_leaves_the_creator_empty_for_anonymous_users():
    """An anonymous creator is stored as no creator."""
    from django.contrib.auth.models import AnonymousUser

    assert room_create(room_id="anon", created_by=AnonymousUser()).created_by is None


@pytest.mark.parametrize("room_id", ["", "Lobby", "-dash-first", "has space", "a" * 65, "émoji", "a/b"])
def test_room_create_refuses_ids_outside_the_protocol_rule(room_id):
    """Room ids follow PROTOCOL.md: 1-64 of a-z 0-9 _ -, starting with a letter or digit."""
    with pytest.raises(ValidationError):
        room_create(room_id=room_id)
    assert not Room.objects.exists()


def test_room_create_refuses_a_taken_id_without_touching_the_existing_room():
    """A second create with the same id raises RoomTaken; the first row is unchanged."""
    room_create(room_id="lobby", title="First")
    with pytest.raises(RoomTaken):
        room_create(room_id="lobby", title="Second")
    assert Room.objects.get(pk="lobby").title == "First"


def test_room_is_locked_is_false_for_rooms_without_a_row():
    """Any valid id is a room; without a row nothing refuses its sends."""
    assert room_is_locked(room_id="never-created") is False


def test_lock_unlock_close_and_reopen_drive_room_is_locked():
    """Locked or closed rooms refuse sends; unlocking and reopening accept them again."""
    room = room_create(room_id="town-hall")
    assert room_is_locked(room_id="town-hall") is False
    room_lock(room=room)
    assert room_is_locked(room_id="town-hall") is True
    room_unlock(room=room)
    assert room_is_locked(room_id="town-hall") is False
    room_close(room=room)
    assert room.closed_at is not None and room.refuses_sends
    assert room_is_locked(room_id="town-hall") is True
    room_reopen(room=room)
    assert room_is_locked(room_id="town-hall") is False
    assert Room.objects.get(pk="town-hall").closed_at is None


def test_closing_twice_keeps_the_first_closing_time():
    """room_close is idempotent: the first closed_at stays."""
    room = room_create(room_id="quiet")
    first = room_close(room=room).closed_at
    assert room_close(room=Room.objects.get(pk="quiet")).closed_at == first


def test_rooms_list_shows_public_open_rooms_only_in_id_order():
    """Unlisted and closed rooms never appear in the public list."""
    room_create(room_id="zeta")
    room_create(room_id="alpha")
    room_create(room_id="secret", visibility=Visibility.UNLISTED)
    room_close(room=room_create(room_id="gone"))
    room_lock(room=room_create(room_id="frozen"))
    assert [r.id for r in rooms_list()] == ["alpha", "frozen", "zeta"]


def test_rooms_list_search_matches_every_word_in_id_title_or_description():
    """Each search word must match the id, the title or the description (case-insensitive)."""
    room_create(room_id="py", title="Python help", description="Ask anything")
    room_create(room_id="rust", title="Rust", description="Crabs welcome, python people too")
    room_create(room_id="go", title="Go")
    room_create(room_id="python-secret", visibility=Visibility.UNLISTED)
    assert [r.id for r in rooms_list(search="PYTHON")] == ["py", "rust"]
    assert [r.id for r in rooms_list(search="python crabs")] == ["rust"]
    assert [r.id for r in rooms_list(search="   ")] == ["go", "py", "rust"]


def test_rooms_list_is_bounded():
    """The list has a limit, so the home page stays small."""
    for n in range(5):
        room_create(room_id=f"room-{n}")
    assert len(rooms_list(limit=3)) == 3


def test_room_get_returns_none_for_missing_or_invalid_ids():
    """room_get never raises for ids from the outside."""
    room_create(room_id="here")
    assert room_get(room_id="here") is not None
    assert room_get(room_id="missing") is None
    assert room_get(room_id="../etc") is None


def test_display_title_falls_back_to_the_id():
    """A room without a title shows its id."""
    assert Room(id="plain").display_title == "plain"
    assert Room(id="x", title="Nice").display_title == "Nice"


def test_the_model_has_no_field_for_chat_text():
    """Rooms are metadata only: no field could hold a message."""
    names = {field.name for field in Room._meta.get_fields()}
    assert names == {
        "id",
        "title",
        "description",
        "visibility",
        "is_locked",
        "closed_at",
        "created_at",
        "created_by",
    }
