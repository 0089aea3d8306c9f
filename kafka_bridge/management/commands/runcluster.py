"""`python manage.py runcluster [--gateways N] [--port P]`: Kafka, N gateways and nginx on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ephemchat.cluster import ClusterError, ClusterSpec, run_cluster


class Command(BaseCommand):
    help = (
        "Run a local cluster without Docker: the local Kafka broker (unless KAFKA_BOOTSTRAP_SERVERS "
        "is set), N gateways with --proxy-headers, and nginx in front of them on one port. "
        "Ctrl-C or SIGTERM stops everything it started."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = ClusterSpec()
        parser.add_argument(
            "--gateways", type=int, default=defaults.gateways, help="gateway processes (default 2)"
        )
        parser.add_argument("--port", type=int, default=defaults.port, help="nginx port (default 8080)")
        parser.add_argument("--host", default=defaults.host, help="nginx address (default 127.0.0.1)")
        parser.add_argument(
            "--kafka-port", type=int, default=defaults.kafka_port, help="local broker port (default 9092)"
        )
        parser.add_argument(
            "--run-dir",
            type=Path,
            default=defaults.run_dir,
            help="logs, nginx config and temp files (default var/cluster)",
        )
        parser.add_argument(
            "--nginx", default=None, help="nginx executable (default: from PATH or /usr/sbin)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        spec = ClusterSpec(
            gateways=options["gateways"],
            port=options["port"],
            host=options["host"],
            run_dir=options["run_dir"].resolve(),
            kafka_port=options["kafka_port"],
            nginx=options["nginx"],
        )
        try:
            run_cluster(spec, self.stdout)
        except ClusterError as exc:
            raise CommandError(str(exc)) from exc
