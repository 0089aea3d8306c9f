"""Django settings for ephemchat.

Everything comes from the environment (and an optional `.env` file at the project root)
through django-environ. The chat and Kafka names are the ones fixed by the protocol:
KAFKA_BOOTSTRAP_SERVERS, CHAT_TOPIC, CHAT_PARTITIONS, CHAT_MESSAGE_TTL, CHAT_HISTORY_LIMIT.
They are read here as plain values; `ephemchat.config.chat_config()` turns them into one
validated, typed object, lazily.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# A fixed development key is fine locally; production must set its own (check --deploy).
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-insecure-ephemchat-key-change-me-in-production")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Behind nginx: trust X-Forwarded-Proto only when told to.
if env.bool("DJANGO_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("DJANGO_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "channels",
    "rooms",
    "kafka_bridge",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "ephemchat.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "ephemchat.asgi.application"

# Room metadata, users and admin only: chat text is never written to the database.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.sqlite3"
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = "django_prometheus.db.backends.postgresql"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "var" / "staticfiles")

# One in-process layer per gateway: Kafka carries messages between gateways.
# Our layer never drops silently and never evicts (rooms/layers.py).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "rooms.layers.RoomChannelLayer",
        "CONFIG": {"capacity": env.int("CHAT_CHANNEL_CAPACITY", default=1000)},
    }
}

# --- chat and Kafka (PROTOCOL.md section 4, plus our own extensions) -------------------
KAFKA_BOOTSTRAP_SERVERS = env.str("KAFKA_BOOTSTRAP_SERVERS", default="127.0.0.1:9092")
CHAT_TOPIC = env.str("CHAT_TOPIC", default="chat-messages")
CHAT_PARTITIONS = env.int("CHAT_PARTITIONS", default=50)
CHAT_MESSAGE_TTL = env.float("CHAT_MESSAGE_TTL", default=120)
CHAT_HISTORY_LIMIT = env.int("CHAT_HISTORY_LIMIT", default=50)
CHAT_REPLICATION_FACTOR = env.int("CHAT_REPLICATION_FACTOR", default=1)
CHAT_MAX_TEXT_CHARS = env.int("CHAT_MAX_TEXT_CHARS", default=2000)
CHAT_MAX_ROOMS = env.int("CHAT_MAX_ROOMS", default=20)
CHAT_SEND_RATE = env.float("CHAT_SEND_RATE", default=5.0)
CHAT_SEND_BURST = env.int("CHAT_SEND_BURST", default=10)
CHAT_MAX_FRAME_BYTES = env.int("CHAT_MAX_FRAME_BYTES", default=16384)
CHAT_DELIVERY_TIMEOUT_MS = env.int("CHAT_DELIVERY_TIMEOUT_MS", default=5000)
CHAT_ALLOWED_ORIGINS = env.list("CHAT_ALLOWED_ORIGINS", default=[])
# A client that stops reading: past this many unread bytes its rooms go `lagging`; stuck
# past it for CHAT_SLOW_CLIENT_CLOSE_S seconds, it is closed with 1008.
CHAT_SLOW_CLIENT_BYTES = env.int("CHAT_SLOW_CLIENT_BYTES", default=1 << 20)
CHAT_SLOW_CLIENT_CLOSE_S = env.float("CHAT_SLOW_CLIENT_CLOSE_S", default=30.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        "kafka_bridge.librdkafka": {"level": "WARNING"},
    },
}
