"""`manage.py runcluster`: 2 real gateways behind real nginx, on the session's real Kafka.

Clients connect to nginx's one port only. Which gateway each lands on is read from the
gateways' own /metrics (ephemchat_ws_connections), on their own ports.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from ephemchat.nginxconf import find_nginx
from kafka_bridge.local_broker import free_port
from tests.support import ARTIFACTS_DIR, PROJECT_DIR, ChatClient, http_get

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]

START_TIMEOUT_S = 150.0  # migrate + topic + 2 Django gateways + nginx, on a shared 2-core machine
STOP_TIMEOUT_S = 60.0
MAX_CLIENTS = 8  # least_conn alternates; 8 sequential clients all on one gateway means it is broken
GATEWAY_LINE = re.compile(r"^\s+(gateway-\d+)\s+http://127\.0\.0\.1:(\d+)\s+pid (\d+)", re.M)


@dataclass
class RunningCluster:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    gateway_ports: dict[str, int]
    started_in_s: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def connections(self) -> dict[str, float]:
        counts = {}
        for name, port in self.gateway_ports.items():
            status, body = http_get(f"http://127.0.0.1:{port}/metrics")
            assert status == 200
            match = re.search(r"^ephemchat_ws_connections ([0-9.e+]+)$", body, re.M)
            assert match, body[:500]
            counts[name] = float(match.group(1))
        return counts

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []


@pytest.fixture
def cluster(
    kafka_bootstrap: str, gateway_database_url: str, topic: str, tmp_path: Path
) -> Iterator[RunningCluster]:
    if find_nginx() is None:
        pytest.fail("nginx is not installed: apt-get install nginx")
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    log_path = ARTIFACTS_DIR / f"runcluster-{topic}.log"
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CHAT_TOPIC": topic,
        "DATABASE_URL": gateway_database_url,
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
        "DJANGO_SETTINGS_MODULE": "ephemchat.settings",
        "PYTHONUNBUFFERED": "1",
    }
    cmd = [sys.executable, "manage.py", "runcluster", "--gateways", "2", "--port", str(port)]
    cmd += ["--run-dir", str(tmp_path / "run")]
    started = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    running = RunningCluster(proc=proc, port=port, log_path=log_path, gateway_ports={}, started_in_s=0.0)
    seen: list[psutil.Process] = []
    try:
        while "ephemchat cluster ready" not in running.output():
            assert proc.poll() is None, f"runcluster exited with {proc.returncode}:\n{running.output()}"
            assert time.monotonic() - started < START_TIMEOUT_S, f"not ready in time:\n{running.output()}"
            time.sleep(0.2)
        running.started_in_s = time.monotonic() - started
        time.sleep(0.2)  # the per-process lines follow the ready line
        running.gateway_ports = {m[0]: int(m[1]) for m in GATEWAY_LINE.findall(running.output())}
        assert len(running.gateway_ports) == 2, running.output()
        seen = running.descendants()
        print(f"\nruncluster ready in {running.started_in_s:.1f} s (2 gateways, external Kafka)")
        yield running
    finally:
        seen += running.descendants()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for child in seen:  # only what this test started, by pid
            try:
                if child.is_running():
                    child.kill()
            except psutil.NoSuchProcess:
                pass


async def clients_on_both_gateways(cluster: RunningCluster) -> dict[str, list[ChatClient]]:
    """Connect through nginx, one at a time, until each gateway holds at least one client."""
    by_gateway: dict[str, list[ChatClient]] = {name: [] for name in cluster.gateway_ports}
    for i in range(MAX_CLIENTS):
        before = cluster.connections()
        client = await ChatClient.connect(cluster.ws_url, name=f"user-{i}")
        after = cluster.connections()
        (landed,) = [name for name in after if after[name] == before[name] + 1]
        by_gateway[landed].append(client)
        if all(by_gateway.values()):
            return by_gateway
    raise AssertionError(
        f"{MAX_CLIENTS} clients through nginx never reached both gateways: {cluster.connections()}"
    )


async def test_clients_on_different_gateways_chat_through_one_nginx_port(cluster: RunningCluster):
    """A message sent on gateway A reaches a member on gateway B and back, each acked, each once."""
    by_gateway = await clients_on_both_gateways(cluster)
    (alice, *more_a), (bob, *more_b) = by_gateway.values()
    everyone = [alice, bob, *more_a, *more_b]
    for client in everyone:
        assert (await client.join("lobby"))["messages"] == []

    offsets = []
    for sender, receiver, text in ((alice, bob, "hello from A"), (bob, alice, "hello from B")):
        await sender.post("lobby", text, client_id=text)
        own = {f["type"]: f for f in await sender.collect(2)}  # the ack and the echo, in either order
        assert own["ack"]["client_id"] == text
        got = await receiver.expect("message")
        assert (got["user"], got["text"]) == (sender.welcome["name"], text)
        assert got["offset"] == own["ack"]["offset"] == own["message"]["offset"]
        offsets.append(got["offset"])
    assert offsets[0] < offsets[1]

    for client in everyone:
        if client not in (alice, bob):
            assert [m["offset"] for m in await client.collect(2, kind="message")] == offsets
        assert await client.quiet(0.5) == [], "nothing twice"
    for client in everyone:
        await client.close()


async def test_static_files_come_from_nginx_and_metrics_stay_inside(cluster: RunningCluster):
    """nginx serves collectstatic's output itself and answers /metrics with 404."""
    status, body = http_get(f"{cluster.url}/static/admin/css/base.css")
    assert status == 200 and "body" in body
    assert http_get(f"{cluster.url}/metrics")[0] == 404
    assert http_get(f"{cluster.url}/readyz")[0] == 200


async def test_sigterm_drains_the_gateways_and_leaves_no_process_behind(cluster: RunningCluster):
    """SIGTERM: clients on both gateways see close 1012 through nginx, then every child is gone."""
    by_gateway = await clients_on_both_gateways(cluster)
    clients = [c for group in by_gateway.values() for c in group]
    children = cluster.descendants()
    names = [" ".join(p.cmdline()) for p in children]
    assert sum("runkafkabridge" in n for n in names) == 2, names
    assert sum("nginx: master" in n for n in names) == 1, names
    assert sum("nginx: worker" in n for n in names) >= 1, names

    cluster.proc.send_signal(signal.SIGTERM)
    for client in clients:
        await asyncio.wait_for(client.ws.wait_closed(), 30)
        assert client.ws.close_code == 1012
    assert cluster.proc.wait(STOP_TIMEOUT_S) == 0, cluster.output()
    assert "cluster stopped" in cluster.output()
    assert [p.pid for p in children if p.is_running()] == []
    with pytest.raises(OSError):
        http_get(f"{cluster.url}/healthz", timeout=2)
