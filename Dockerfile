# One image for every ephemchat process in docker-compose.yml: the gateways (the default
# command), and the one-shot `migrate` and `topic-init` jobs.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=ephemchat.settings \
    DJANGO_STATIC_ROOT=/srv/ephemchat/static

WORKDIR /app

# Dependencies first, read from pyproject.toml alone, so a code change reuses this layer.
# psycopg: compose points DATABASE_URL at Postgres.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt "psycopg[binary]>=3.2,<4" \
    && rm /tmp/requirements.txt

# The code (see .dockerignore: no .env, no venv, no var/, no tests).
COPY . ./

# Not root. The static dir belongs to the app user, so the named volume compose mounts
# there starts out writable for `collectstatic`.
RUN useradd --system --uid 10001 --home-dir /app --no-create-home ephemchat \
    && mkdir -p /app/var /srv/ephemchat/static \
    && chown ephemchat /app/var /srv/ephemchat/static
USER ephemchat

EXPOSE 8000
CMD ["python", "manage.py", "runkafkabridge", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
