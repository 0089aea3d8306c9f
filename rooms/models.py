"""Room metadata. Never chat text: messages live only in Kafka, for their TTL.

A room does not need a row to be used: any valid room id is a room (like an unlisted
link). A row adds a title, a description, a place in the public list, and staff controls
(lock, close).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from rooms.domain import is_valid_room_id

ROOM_ID_MAX_CHARS = 64  # PROTOCOL.md: room ids are 1-64 characters
TITLE_MAX_CHARS = 80
DESCRIPTION_MAX_CHARS = 280  # one short paragraph in the room list


def validate_room_id_field(value: str) -> None:
    if not is_valid_room_id(value):
        raise ValidationError(
            "Use 1-64 characters of a-z, 0-9, _ and -, starting with a letter or digit.",
            code="bad_room",
        )


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public: listed on the home page"
    UNLISTED = "unlisted", "Unlisted: only people with the link"


class RoomQuerySet(models.QuerySet["Room"]):
    def open(self) -> RoomQuerySet:
        return self.filter(closed_at__isnull=True)

    def listed(self) -> RoomQuerySet:
        return self.open().filter(visibility=Visibility.PUBLIC)


class Room(models.Model):
    id = models.CharField(
        "room id",
        primary_key=True,
        max_length=ROOM_ID_MAX_CHARS,
        validators=[validate_room_id_field],
        help_text="The id in the link /r/<id>/ and the Kafka key. It cannot change.",
    )
    title = models.CharField(max_length=TITLE_MAX_CHARS, blank=True)
    description = models.TextField(max_length=DESCRIPTION_MAX_CHARS, blank=True)
    visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.PUBLIC)
    is_locked = models.BooleanField(
        "locked", default=False, help_text="A locked room can be read and joined, but refuses new messages."
    )
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text="A closed room is hidden from the list and refuses new messages."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = RoomQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["visibility", "closed_at"], name="rooms_room_listed_idx")]

    def __str__(self) -> str:
        return self.id

    def get_absolute_url(self) -> str:
        return reverse("rooms:chat", kwargs={"room": self.id})

    @property
    def display_title(self) -> str:
        return self.title or self.id

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None

    @property
    def refuses_sends(self) -> bool:
        return self.is_locked or self.is_closed
