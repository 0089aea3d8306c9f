"""Room browser, chat page, room metadata JSON; static files when no proxy serves them."""

from __future__ import annotations

from django.conf import settings
from django.contrib.staticfiles.views import serve as serve_static
from django.urls import path, re_path, register_converter

from rooms import views


class RoomIdConverter:
    """A room id in a URL: PROTOCOL.md's rule (checked again by the views and the server)."""

    regex = r"[a-z0-9][a-z0-9_-]{0,63}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(RoomIdConverter, "room")

app_name = "rooms"

urlpatterns = [
    path("", views.home, name="home"),
    path("go/", views.room_go, name="go"),
    path("r/<room:room>/", views.chat, name="chat"),
    # Not /api/rooms/<room>: /api/rooms/stats is the cluster stats endpoint (and "stats" a valid id).
    path("api/rooms/<room:room>/meta", views.room_meta, name="meta"),
]

# The gateway serves /static/ itself (app CSS/JS and the admin's) so that the two README
# commands give a working, offline site. Behind nginx, nginx serves STATIC_ROOT (after
# collectstatic) and this route is never reached.
if settings.STATIC_URL and settings.STATIC_URL.startswith("/"):
    urlpatterns.append(
        re_path(
            rf"^{settings.STATIC_URL.strip('/')}/(?P<path>.+)$",
            serve_static,
            {"insecure": True},
            name="static",
        )
    )
