"""`manage.py localkafka install|start|stop|wipe|status`: a real Kafka broker on loopback."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kafka_bridge.local_broker import LocalBroker, LocalBrokerError, install_kafka


class _Terminate(Exception):
    """SIGTERM in foreground mode: stop the broker like Ctrl-C does."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminate


class Command(BaseCommand):
    help = "Install, run, stop or wipe a local Apache Kafka broker (KRaft, one node) on 127.0.0.1."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["install", "start", "stop", "wipe", "status"])
        parser.add_argument("--port", type=int, default=9092, help="client port (default 9092)")
        parser.add_argument("--controller-port", type=int, default=None, help="default: port + 1")
        parser.add_argument("--data-dir", type=Path, default=None, help="default: var/kafka-<port>")
        parser.add_argument("--detach", action="store_true", help="start: return once the broker is ready")
        parser.add_argument("--timeout", type=float, default=60, help="start: seconds to wait for readiness")

    def handle(self, *args: Any, **options: Any) -> None:
        broker = LocalBroker(
            port=options["port"],
            controller_port=options["controller_port"],
            data_dir=options["data_dir"],
            out=self.stdout,
        )
        try:
            getattr(self, f"_{options['action']}")(broker, options)
        except LocalBrokerError as exc:
            raise CommandError(str(exc)) from exc

    def _install(self, broker: LocalBroker, options: dict[str, Any]) -> None:
        self.stdout.write(f"Kafka jars: {install_kafka(out=self.stdout)}")

    def _start(self, broker: LocalBroker, options: dict[str, Any]) -> None:
        bootstrap = broker.start(timeout=options["timeout"])
        self.stdout.write(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap}")
        self.stdout.write(f"broker log: {broker.log_path}")
        if options["detach"]:
            self.stdout.write(f"running detached (pid {broker.pid()}); stop it with `localkafka stop`")
            return
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        self.stdout.write("press Ctrl-C to stop")
        try:
            while broker.is_running():
                time.sleep(0.5)
            raise CommandError(f"the Kafka broker exited on its own; see {broker.log_path}")
        except (KeyboardInterrupt, _Terminate):
            self.stdout.write("stopping the Kafka broker")
        finally:
            broker.stop()
            signal.signal(signal.SIGTERM, previous)
        self.stdout.write("stopped")

    def _stop(self, broker: LocalBroker, options: dict[str, Any]) -> None:
        if not broker.is_running():
            self.stdout.write(f"no local broker running for {broker.dir}")
            return
        broker.stop()
        self.stdout.write(f"stopped the broker on {broker.bootstrap}")

    def _wipe(self, broker: LocalBroker, options: dict[str, Any]) -> None:
        broker.wipe()
        self.stdout.write(f"stopped the broker and deleted {broker.dir}")

    def _status(self, broker: LocalBroker, options: dict[str, Any]) -> None:
        pid = broker.pid()
        state = f"running (pid {pid})" if pid is not None else "not running"
        self.stdout.write(f"broker {broker.bootstrap}: {state}")
        self.stdout.write(f"data dir: {broker.dir}")
        self.stdout.write(f"broker log: {broker.log_path}")
