"""Staff admin for rooms: list, search, filters; lock, unlock, close, reopen, delete.

Actions go through rooms.services, like every other change to a room.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import ngettext

from rooms import services
from rooms.models import Room

admin.site.site_header = "ephemchat admin"
admin.site.site_title = "ephemchat admin"
admin.site.index_title = "Rooms and users"


class OpenClosedFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("open", "Open"), ("closed", "Closed")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Room]) -> QuerySet[Room]:
        if self.value() == "open":
            return queryset.filter(closed_at__isnull=True)
        if self.value() == "closed":
            return queryset.filter(closed_at__isnull=False)
        return queryset


def _apply(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Room],
    service: Callable[..., Room],
    verb: str,
) -> None:
    count = 0
    for room in queryset:
        service(room=room)
        count += 1
    modeladmin.message_user(
        request,
        ngettext("%(n)d room %(verb)s.", "%(n)d rooms %(verb)s.", count) % {"n": count, "verb": verb},
        messages.SUCCESS,
    )


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["id", "title", "visibility", "is_locked", "is_open", "created_at", "created_by"]
    list_display_links = ["id", "title"]
    list_filter = [OpenClosedFilter, "visibility", "is_locked", "created_at"]
    search_fields = ["id", "title", "description"]
    date_hierarchy = "created_at"
    list_per_page = 50
    readonly_fields = ["closed_at", "created_at", "created_by"]
    fieldsets = [
        (None, {"fields": ["id", "title", "description", "visibility"]}),
        ("Moderation", {"fields": ["is_locked", "closed_at"]}),
        ("History", {"fields": ["created_at", "created_by"]}),
    ]
    actions = ["lock_rooms", "unlock_rooms", "close_rooms", "reopen_rooms"]

    @admin.display(boolean=True, description="open", ordering="closed_at")
    def is_open(self, room: Room) -> bool:
        return not room.is_closed

    def get_readonly_fields(self, request: HttpRequest, obj: Room | None = None) -> list[str]:
        # The id is the Kafka key and every link to the room: it is set once.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "id"] if obj is not None else fields

    def save_model(self, request: HttpRequest, obj: Room, form: Any, change: bool) -> None:
        if not change and obj.created_by is None and request.user.is_authenticated:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Lock: refuse new messages", permissions=["change"])
    def lock_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        _apply(self, request, queryset, services.room_lock, "locked")

    @admin.action(description="Unlock: accept messages again", permissions=["change"])
    def unlock_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        _apply(self, request, queryset, services.room_unlock, "unlocked")

    @admin.action(description="Close: hide from the list and refuse messages", permissions=["change"])
    def close_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        _apply(self, request, queryset, services.room_close, "closed")

    @admin.action(description="Reopen closed rooms", permissions=["change"])
    def reopen_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        _apply(self, request, queryset, services.room_reopen, "reopened")
