"""Room metadata services: create, lock, unlock, close, reopen, and the send check.

Keyword-only and typed. Rooms hold metadata only; chat text never reaches these functions.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from rooms.models import Room, Visibility


class RoomTaken(ValidationError):
    """A room with this id already has a metadata row."""


def room_is_locked(*, room_id: str) -> bool:
    """True when sends to `room_id` are refused: the room is locked or closed by staff.

    One primary-key lookup; a room without a row is open. Sync (Django ORM): call it from
    async code through `channels.db.database_sync_to_async`.
    """
    return Room.objects.filter(pk=room_id).filter(Q(is_locked=True) | Q(closed_at__isnull=False)).exists()


def room_create(
    *,
    room_id: str,
    title: str = "",
    description: str = "",
    visibility: str = Visibility.PUBLIC,
    created_by: AbstractBaseUser | AnonymousUser | None = None,
) -> Room:
    """Create a room's metadata row. Raises ValidationError (RoomTaken when the id is used)."""
    room = Room(
        id=room_id,
        title=title.strip(),
        description=description.strip(),
        visibility=visibility,
        created_by_id=created_by.pk if created_by is not None and created_by.is_authenticated else None,
    )
    room.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            room.save(force_insert=True)
    except IntegrityError:
        raise RoomTaken("A room with this id already exists.", code="room_taken") from None
    return room


def room_lock(*, room: Room) -> Room:
    """Refuse new messages in the room; members can still read and join."""
    if not room.is_locked:
        room.is_locked = True
        room.save(update_fields=["is_locked"])
    return room


def room_unlock(*, room: Room) -> Room:
    if room.is_locked:
        room.is_locked = False
        room.save(update_fields=["is_locked"])
    return room


def room_close(*, room: Room) -> Room:
    """Hide the room from the list and refuse new messages, for good (until reopened)."""
    if room.closed_at is None:
        room.closed_at = timezone.now()
        room.save(update_fields=["closed_at"])
    return room


def room_reopen(*, room: Room) -> Room:
    if room.closed_at is not None:
        room.closed_at = None
        room.save(update_fields=["closed_at"])
    return room
