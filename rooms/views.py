"""Pages: the room browser at `/` and the chat page at `/r/<room>/`, plus room metadata JSON.

Thin: parse, call one selector or service, render. The chat itself runs over the
WebSocket (static/ephemchat/chat.js); these pages hold no chat text.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from ephemchat.config import chat_config
from rooms.forms import ROOM_ID_HELP, RoomCreateForm, RoomGoForm, RoomSearchForm
from rooms.models import Room
from rooms.selectors import room_get, rooms_list
from rooms.services import room_create

# Our pages load nothing from other sites and run no inline script, so a strict policy
# costs nothing and makes an injection bug much harder to exploit. `ws:`/`wss:` allow the
# page to reach another gateway of the same site after a reconnect (see chat.js).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' ws: wss:",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ]
)


def strict_csp(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    return wrapped


def ttl_in_words(seconds: float) -> str:
    """`120` -> "2 minutes", `5` -> "5 seconds", `90` -> "90 seconds", `3600` -> "1 hour"."""
    whole = round(seconds)
    for unit, size in (("hour", 3600), ("minute", 60)):
        if whole >= size and whole % size == 0:
            count = whole // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{whole} second{'s' if whole != 1 else ''}"


# Rooms one client address may create per hour on one gateway (staff: no limit). Enough for
# a person; stops a script from filling the room list.
ROOM_CREATIONS_PER_HOUR = 10


def _may_create_room(request: HttpRequest) -> bool:
    if request.user.is_staff:
        return True
    key = f"room-creations:{request.META.get('REMOTE_ADDR', '?')}"
    cache.add(key, 0, timeout=3600)
    try:
        return cache.incr(key) <= ROOM_CREATIONS_PER_HOUR
    except ValueError:  # expired between add and incr
        return True


def _ttl_context() -> dict[str, Any]:
    ttl_ms = chat_config().ttl_ms
    return {"ttl_ms": ttl_ms, "ttl_words": ttl_in_words(ttl_ms / 1000)}


@strict_csp
@require_http_methods(["GET", "HEAD", "POST"])
def home(request: HttpRequest) -> HttpResponse:
    """The room browser: public rooms, search, and the create-room form."""
    search = RoomSearchForm(request.GET)
    query = search.cleaned_data["q"] if search.is_valid() else ""
    form = RoomCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid() and not _may_create_room(request):
        form.add_error(
            None, f"You have created {ROOM_CREATIONS_PER_HOUR} rooms in the last hour; please wait a while."
        )
    elif request.method == "POST" and form.is_valid():
        try:
            room = room_create(
                room_id=form.cleaned_data["room_id"],
                title=form.cleaned_data["title"],
                description=form.cleaned_data["description"],
                visibility=form.cleaned_data["visibility"],
                created_by=request.user,
            )
        except ValidationError as exc:
            form.add_error("room_id", exc)
        else:
            messages.success(
                request, f"Room “{room.display_title}” created. Share the link to invite people."
            )
            return redirect("rooms:chat", room=room.id)
    rooms = list(rooms_list(search=query))
    context = {"rooms": rooms, "query": query, "search_form": search, "form": form, **_ttl_context()}
    # An invalid form is answered 200 with its errors, as Django's own admin does.
    return render(request, "rooms/home.html", context)


@require_GET
def room_go(request: HttpRequest) -> HttpResponse:
    """ "Open a room by id" without creating a row: any valid id is a room."""
    form = RoomGoForm(request.GET)
    if form.is_valid():
        return redirect("rooms:chat", room=form.cleaned_data["room"])
    messages.error(request, f"Not a valid room id. {ROOM_ID_HELP}")
    return redirect("rooms:home")


@strict_csp
@require_GET
def chat(request: HttpRequest, room: str) -> HttpResponse:
    """The chat page. The room need not have a row: any valid room id works."""
    context = {
        "room_id": room,
        "room": room_get(room_id=room),
        "account_name": request.user.get_username() if request.user.is_authenticated else "",
        **_ttl_context(),
    }
    return render(request, "rooms/chat.html", context)


def room_meta_payload(room_id: str, room: Room | None) -> dict[str, Any]:
    if room is None:
        return {
            "id": room_id,
            "exists": False,
            "title": room_id,
            "description": "",
            "locked": False,
            "closed": False,
            "url": reverse("rooms:chat", kwargs={"room": room_id}),
        }
    return {
        "id": room.id,
        "exists": True,
        "title": room.display_title,
        "description": room.description,
        "locked": room.is_locked,
        "closed": room.is_closed,
        "url": reverse("rooms:chat", kwargs={"room": room.id}),
    }


@require_GET
def room_meta(request: HttpRequest, room: str) -> JsonResponse:
    """Metadata the chat page shows for a room it adds: title, description, locked, closed."""
    return JsonResponse(room_meta_payload(room, room_get(room_id=room)))
