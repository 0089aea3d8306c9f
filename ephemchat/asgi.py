"""ASGI entry point: HTTP through Django, WebSockets at /ws/chat/ through ChatConsumer."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ephemchat.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from ephemchat import daphne_compat  # noqa: E402
from ephemchat.origins import ChatOriginValidator  # noqa: E402
from rooms.consumers import ChatConsumer  # noqa: E402

daphne_compat.install()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": ChatOriginValidator(
            AuthMiddlewareStack(URLRouter([path("ws/chat/", ChatConsumer.as_asgi())]))
        ),
    }
)
