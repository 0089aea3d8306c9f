"""What the benchmarks share: a migrated throw-away database and a Kafka broker (the one in
KAFKA_BOOTSTRAP_SERVERS, or the project's local broker on free ports)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ephemchat.settings")

from kafka_bridge.local_broker import LocalBroker, free_port_pair  # noqa: E402


@contextlib.contextmanager
def bench_environment() -> Iterator[tuple[str, str]]:
    """(bootstrap, database_url) for the gateways of one benchmark run; cleaned up after."""
    folder = Path(tempfile.mkdtemp(prefix="ephemchat-bench-"))
    database_url = f"sqlite:///{folder / 'bench.sqlite3'}"
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        check=True,
        env={**os.environ, "DATABASE_URL": database_url},
        cwd=PROJECT_DIR,
    )
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    try:
        if not bootstrap:
            port, controller = free_port_pair()
            broker = LocalBroker(port=port, controller_port=controller, data_dir=folder / "kafka")
            bootstrap = broker.start(timeout=120)
        yield bootstrap, database_url
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(folder, ignore_errors=True)
