"""The Docker-free local cluster: Kafka, N gateways and nginx on loopback (`manage.py runcluster`).

The same topology as docker-compose.yml, on one machine: the local Kafka broker (unless
KAFKA_BOOTSTRAP_SERVERS names one), the chat topic, the database, N `runkafkabridge
--proxy-headers` processes on free ports, and nginx (deploy/nginx/ephemchat.conf) in front
of them on one port. The first Ctrl-C or SIGTERM stops everything this started, in order:
gateways (SIGTERM, so they drain and close sockets with 1012, which nginx passes on), then
nginx, then Kafka. A second one kills what is left at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from django.conf import settings
from django.core.management import call_command

from ephemchat import nginxconf, processes
from ephemchat.config import chat_config
from ephemchat.processes import Child, StartError, http_status
from kafka_bridge.local_broker import LocalBroker, LocalBrokerError, TextSink, free_port, port_is_free

PROJECT_DIR = Path(__file__).resolve().parent.parent
KAFKA_START_TIMEOUT_S = 120.0  # the first start formats storage and warms a JVM on 2 cores
READY_TIMEOUT_S = 90.0  # N Django processes importing at once on 2 cores
NGINX_STOP_TIMEOUT_S = 10.0
# Beyond a gateway's own drain bound (delivery timeout + 2 s): process exit and Kafka close.
GATEWAY_STOP_SLACK_S = 10.0
WATCH_INTERVAL_S = 0.5


class ClusterError(Exception):
    """The cluster could not start or stopped on its own; the message says what to fix."""


class _Stop(Exception):
    """First Ctrl-C or SIGTERM: stop everything in order."""


class _ForceStop(Exception):
    """Second Ctrl-C or SIGTERM while stopping: kill what is left."""


@dataclass(frozen=True)
class ClusterSpec:
    gateways: int = 2
    port: int = 8080
    host: str = "127.0.0.1"
    run_dir: Path = PROJECT_DIR / "var" / "cluster"
    kafka_port: int = 9092
    nginx: str | None = None  # the nginx executable; default: found on PATH or in sbin

    @property
    def local_host(self) -> str:
        """Where this machine reaches nginx."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host


@dataclass
class LocalCluster:
    spec: ClusterSpec
    out: TextSink
    broker: LocalBroker | None = None  # set only when this cluster started the broker
    bootstrap: str = ""
    gateways: list[Child] = field(default_factory=list)
    nginx: Child | None = None

    @property
    def url(self) -> str:
        return f"http://{self.spec.local_host}:{self.spec.port}"

    @property
    def nginx_layout(self) -> nginxconf.LocalNginxLayout:
        return nginxconf.LocalNginxLayout(self.spec.run_dir / "nginx")

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        if flush := getattr(self.out, "flush", None):
            flush()

    # --- start -----------------------------------------------------------------------

    def start(self) -> float:
        """Start everything and wait until nginx answers /readyz; return the seconds taken."""
        started = time.monotonic()
        self.spec.run_dir.mkdir(parents=True, exist_ok=True)
        self.bootstrap = self._kafka()
        env = self._child_env()
        topic = subprocess.Popen(  # the project's own topic command, while this process migrates
            [sys.executable, "manage.py", "chattopic"],
            cwd=PROJECT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            call_command("migrate", interactive=False, verbosity=0)
            call_command("collectstatic", interactive=False, verbosity=0)
            self.say(f"database migrated; static files collected into {settings.STATIC_ROOT}")
        finally:
            output = topic.communicate()[0].decode(errors="replace").strip()
        if topic.returncode != 0:
            raise ClusterError(f"`manage.py chattopic` failed:\n{output}")
        self.say(output)
        try:
            for index in range(1, self.spec.gateways + 1):
                self.gateways.append(self._start_gateway(index, env))
            pending = list(self.gateways)

            def gateways_ready() -> bool:
                pending[:] = [g for g in pending if http_status(f"{g.url}/readyz") != 200]
                return not pending

            processes.wait_until(
                gateways_ready, what="gateways", children=self.gateways, timeout=READY_TIMEOUT_S
            )
            self.nginx = self._start_nginx()
            processes.wait_until(
                lambda: http_status(f"{self.url}/readyz") == 200,
                what="nginx",
                children=[self.nginx],
                timeout=READY_TIMEOUT_S,
            )
        except (StartError, nginxconf.NginxConfigError) as exc:
            raise ClusterError(str(exc)) from exc
        return time.monotonic() - started

    def _kafka(self) -> str:
        if external := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
            self.say(f"kafka: {external} (from KAFKA_BOOTSTRAP_SERVERS; not started here)")
            return external
        broker = LocalBroker(port=self.spec.kafka_port, out=self.out)
        if broker.is_running():
            self.say(f"kafka: {broker.bootstrap} (already running, pid {broker.pid()}; left running)")
            return broker.bootstrap
        self.broker = broker
        try:
            return broker.start(timeout=KAFKA_START_TIMEOUT_S)
        except LocalBrokerError as exc:
            raise ClusterError(str(exc)) from exc

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.bootstrap,
            PYTHONUNBUFFERED="1",
            DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "ephemchat.settings"),
        )
        env.setdefault("DJANGO_BEHIND_PROXY", "1")  # nginx overwrites X-Forwarded-Proto itself
        return env

    def _start_gateway(self, index: int, env: dict[str, str]) -> Child:
        port = free_port()
        name = f"gateway-{index}"
        cmd = [sys.executable, "manage.py", "runkafkabridge", "--host", "127.0.0.1", "--port", str(port)]
        log_path = self.spec.run_dir / f"{name}.log"
        child = Child.spawn(name, [*cmd, "--proxy-headers"], cwd=PROJECT_DIR, env=env, log_path=log_path)
        child.url = f"http://127.0.0.1:{port}"
        return child

    def _start_nginx(self) -> Child:
        binary = nginxconf.find_nginx(self.spec.nginx)
        assert binary is not None  # check_spec made sure before anything started
        host = f"[{self.spec.host}]" if ":" in self.spec.host else self.spec.host
        layout = self.nginx_layout
        args = nginxconf.prepare_local_nginx(
            binary=binary,
            root=layout.root,
            listen=f"{host}:{self.spec.port}",
            gateways=[g.url.removeprefix("http://") for g in self.gateways],
            static_root=Path(settings.STATIC_ROOT).resolve(),
        )
        child = Child.spawn(
            "nginx", [binary, *args], cwd=PROJECT_DIR, env=None, log_path=layout.root / "console.log"
        )
        child.url = self.url
        return child

    # --- run and stop ----------------------------------------------------------------

    def children(self) -> Iterator[Child]:
        yield from self.gateways
        if self.nginx is not None:
            yield self.nginx

    def describe(self) -> str:
        lines = [f"  {g.name:<10} {g.url:<24} pid {g.pid:<7} log {g.log_path}" for g in self.gateways]
        if self.nginx is not None:
            layout = self.nginx_layout
            lines.append(f"  {'nginx':<10} {self.url:<24} pid {self.nginx.pid:<7} log {layout.error_log}")
            lines.append(f"  {'':<10} config {layout.main_conf} + {layout.site_conf.name}")
        if self.broker is not None:
            pid = self.broker.pid()
            lines.append(f"  {'kafka':<10} {self.bootstrap:<24} pid {pid!s:<7} log {self.broker.log_path}")
        else:
            lines.append(f"  {'kafka':<10} {self.bootstrap} (not started here)")
        return "\n".join(lines)

    def watch(self) -> None:
        """Block until something essential dies; a lost gateway is reported, nginx routes around it."""
        while True:
            for gateway in self.gateways:
                if not gateway.alive() and not gateway.reported_exit:
                    gateway.reported_exit = True
                    self.say(
                        f"{gateway.name} exited (code {gateway.proc.returncode}); nginx sends new "
                        f"connections to the others. log: {gateway.log_path}"
                    )
            if not any(g.alive() for g in self.gateways):
                raise ClusterError("every gateway has exited; see their logs")
            if self.nginx is not None and not self.nginx.alive():
                code = self.nginx.proc.returncode
                raise ClusterError(f"nginx exited (code {code}); see {self.nginx_layout.error_log}")
            if self.broker is not None and not self.broker.is_running():
                raise ClusterError(f"the Kafka broker exited; see {self.broker.log_path}")
            time.sleep(WATCH_INTERVAL_S)

    def stop(self) -> None:
        """Gateways drain, then nginx, then Kafka (if started here); SIGKILL after each bound."""
        drain_s = chat_config().delivery_timeout_ms / 1000 + 2 + GATEWAY_STOP_SLACK_S
        processes.terminate(self.gateways, timeout=drain_s, say=self.say)
        if self.nginx is not None:
            processes.terminate([self.nginx], timeout=NGINX_STOP_TIMEOUT_S, say=self.say)
        if self.broker is not None:
            self.broker.stop()

    def kill(self) -> None:
        for child in self.children():
            processes.kill(child)
        if self.broker is not None:
            self.broker.kill()


def check_spec(spec: ClusterSpec) -> None:
    """Fail before starting anything when this machine cannot run the cluster."""
    if spec.gateways < 1:
        raise ClusterError("--gateways must be at least 1")
    if nginxconf.find_nginx(spec.nginx) is None:
        where = spec.nginx or "on PATH or in /usr/sbin"
        raise ClusterError(f"nginx is not installed ({where}): apt-get install nginx")
    if spec.local_host == "127.0.0.1" and not port_is_free(spec.port):
        raise ClusterError(f"port {spec.port} is already in use; choose another with --port")


def run_cluster(spec: ClusterSpec, out: TextSink) -> None:
    """Start the cluster, print where everything is, run until Ctrl-C/SIGTERM, stop it all."""
    check_spec(spec)
    cluster = LocalCluster(spec=spec, out=out)
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            raise _ForceStop
        stopping = True
        raise _Stop

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    failure: Exception | None = None
    try:
        try:
            elapsed = cluster.start()
            cluster.say(
                f"ephemchat cluster ready in {elapsed:.1f} s: {cluster.url}/ (WebSocket at /ws/chat/)"
            )
            cluster.say(cluster.describe())
            cluster.say("Ctrl-C or SIGTERM stops everything: gateways drain, then nginx, then Kafka.")
            cluster.watch()
        except _Stop:
            pass
        except Exception as exc:  # ClusterError or a bug: stop what started, then report it
            failure = exc
        stopping = True
        try:
            cluster.say("stopping: gateways drain, then nginx, then Kafka (Ctrl-C again kills)")
            cluster.stop()
        except _ForceStop:
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            cluster.say("killing what is left")
            cluster.kill()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failure is not None:
        raise failure
    cluster.say("cluster stopped")
