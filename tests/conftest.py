"""Shared fixtures: one real Kafka broker for the session, real gateway processes.

With KAFKA_BOOTSTRAP_SERVERS set, tests use that broker; otherwise the project's own
local broker (kafka_bridge/local_broker.py) is started on free ports for the session.
Each test that needs a topic gets its own, so tests never see each other's messages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kafka_bridge.local_broker import LocalBroker, free_port_pair
from tests.support import PROJECT_DIR, GatewayProcess, unique_topic


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    port, controller = free_port_pair()
    data_dir = Path(tempfile.mkdtemp(prefix="ephemchat-kafka-"))
    broker = LocalBroker(port=port, controller_port=controller, data_dir=data_dir)
    bootstrap = broker.start(timeout=120)
    try:
        yield bootstrap
    finally:
        broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def gateway_database_url() -> Iterator[str]:
    """A migrated SQLite database for gateway processes (room metadata, users)."""
    folder = Path(tempfile.mkdtemp(prefix="ephemchat-db-"))
    url = f"sqlite:///{folder / 'gateway.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "ephemchat.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=PROJECT_DIR, env=env, check=True)
    yield url
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def topic() -> str:
    return unique_topic()


@pytest.fixture
def gateway_factory(
    kafka_bootstrap: str, gateway_database_url: str
) -> Iterator[Callable[..., GatewayProcess]]:
    """Start `runkafkabridge` processes; all are stopped after the test."""
    started: list[GatewayProcess] = []

    def start(topic: str, bootstrap: str | None = None, **env: str) -> GatewayProcess:
        env = {"DATABASE_URL": gateway_database_url, **env}
        gateway = GatewayProcess(bootstrap=bootstrap or kafka_bootstrap, topic=topic, env_overrides=env)
        started.append(gateway)
        return gateway.start()

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture
def gateway(gateway_factory: Callable[..., GatewayProcess], topic: str) -> GatewayProcess:
    return gateway_factory(topic)
