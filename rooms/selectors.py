"""Reads of room metadata. Chat text is not here: it never touches the database."""

from __future__ import annotations

from django.db.models import Q

from rooms.domain import is_valid_room_id
from rooms.models import Room, RoomQuerySet

MAX_SEARCH_CHARS = 100  # longer queries are cut: a room list search is a few words
ROOM_LIST_LIMIT = 200  # the home page shows at most this many rooms; search narrows it


def rooms_list(*, search: str = "", limit: int = ROOM_LIST_LIMIT) -> RoomQuerySet:
    """Public, open rooms, optionally matching `search` in id, title or description."""
    rooms = Room.objects.listed()
    terms = search.strip()[:MAX_SEARCH_CHARS].split()
    for term in terms:
        rooms = rooms.filter(
            Q(id__icontains=term) | Q(title__icontains=term) | Q(description__icontains=term)
        )
    return rooms.order_by("id")[:limit]  # type: ignore[return-value]


def room_get(*, room_id: str) -> Room | None:
    """The room's metadata row, or None (a room without a row is still a valid room)."""
    if not is_valid_room_id(room_id):
        return None
    return Room.objects.filter(pk=room_id).first()


def room_exists(*, room_id: str) -> bool:
    return Room.objects.filter(pk=room_id).exists()
