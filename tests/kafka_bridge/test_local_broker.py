"""The local broker: a real Kafka JVM on free ports, each with its own data dir under tmp."""

from __future__ import annotations

import io
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from kafka_bridge.local_broker import (
    LocalBroker,
    LocalBrokerError,
    free_port_pair,
    install_kafka,
    port_is_free,
)

START_TIMEOUT_S = 120.0  # generous: shared, noisy machines


def _broker(data_dir: Path) -> LocalBroker:
    port, controller = free_port_pair()
    return LocalBroker(
        port=port, controller_port=controller, data_dir=data_dir, heap="256m", out=io.StringIO()
    )


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})


def _cluster_id(broker: LocalBroker) -> str:
    meta = (broker.dir / "data" / "meta.properties").read_text()
    return next(line.split("=", 1)[1] for line in meta.splitlines() if line.startswith("cluster.id="))


@pytest.fixture(scope="module")
def running_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    broker = _broker(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start(timeout=START_TIMEOUT_S)
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker that is not started yet; always stopped after the test."""
    broker = _broker(tmp_path / "kafka")
    try:
        yield broker
    finally:
        broker.stop()


def test_started_broker_answers_metadata(running_broker: LocalBroker) -> None:
    """start() returns a bootstrap address whose broker answers a metadata request."""
    metadata = _admin(running_broker.bootstrap).list_topics(timeout=10)
    assert list(metadata.brokers) == [1]
    assert running_broker.bootstrap == f"127.0.0.1:{running_broker.port}"
    assert running_broker.is_running()
    assert running_broker.pid_file.read_text().strip() == str(running_broker.pid())


def test_start_says_where_the_log_is(running_broker: LocalBroker) -> None:
    """The start message names the log file, so a developer knows where to look."""
    assert isinstance(running_broker.out, io.StringIO)
    assert f"log: {running_broker.log_path}" in running_broker.out.getvalue()


def test_broker_writes_its_log(running_broker: LocalBroker) -> None:
    """The broker's own log4j2 log goes to log_file (needs a matching SLF4J binding)."""
    assert "Kafka Server started" in running_broker.log_path.read_text()


def test_second_start_on_the_same_data_dir_is_refused(running_broker: LocalBroker) -> None:
    """Another LocalBroker for a data dir whose broker runs refuses to start a second JVM."""
    twin = LocalBroker(
        port=running_broker.port,
        controller_port=running_broker.controller_port,
        data_dir=running_broker.dir,
        out=io.StringIO(),
    )
    assert twin.pid() == running_broker.pid()
    with pytest.raises(LocalBrokerError, match="already running"):
        twin.start()


def test_port_taken_by_another_process_fails_clearly(tmp_path: Path) -> None:
    """A port held by someone else is reported before any JVM starts."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        broker = LocalBroker(port=port, controller_port=port + 1, data_dir=tmp_path / "k", out=io.StringIO())
        with pytest.raises(LocalBrokerError, match=f"port {port} on 127.0.0.1 is already in use"):
            broker.start()
    assert not (tmp_path / "k").exists()


def test_stop_frees_the_ports_and_is_idempotent(broker: LocalBroker) -> None:
    """stop() ends the JVM cleanly and frees both ports; a second stop() does nothing."""
    broker.start(timeout=START_TIMEOUT_S)
    pid = broker.pid()
    assert pid is not None
    broker.stop()
    assert not broker.is_running()
    assert not os.path.exists(f"/proc/{pid}")
    assert port_is_free(broker.port)
    assert broker.controller_port is not None and port_is_free(broker.controller_port)
    assert not broker.pid_file.exists()
    broker.stop()
    assert not broker.is_running()


def test_restart_reuses_storage_and_keeps_topics(broker: LocalBroker) -> None:
    """A restart does not reformat: same cluster id, and topics created before are still there."""
    with broker:
        cluster_id = _cluster_id(broker)
        admin = _admin(broker.bootstrap)  # keep the client alive until the future resolves
        admin.create_topics([NewTopic("kept", num_partitions=3)])["kept"].result(timeout=30)
    assert not broker.is_running()

    broker.start(timeout=START_TIMEOUT_S)
    assert _cluster_id(broker) == cluster_id
    topics = _admin(broker.bootstrap).list_topics(timeout=10).topics
    assert "kept" in topics
    assert len(topics["kept"].partitions) == 3


def test_killed_broker_restarts_on_the_same_data(broker: LocalBroker) -> None:
    """After SIGKILL (a crash) the broker starts again on the same data dir.

    The restart waits out the old registration's broker.session.timeout.ms (9 s).
    """
    broker.start(timeout=START_TIMEOUT_S)
    admin = _admin(broker.bootstrap)  # keep the client alive until the future resolves
    admin.create_topics([NewTopic("survivor", num_partitions=2)])["survivor"].result(timeout=30)
    pid = broker.pid()
    broker.kill()
    assert not broker.is_running()
    assert pid is not None and not os.path.exists(f"/proc/{pid}")

    broker.start(timeout=START_TIMEOUT_S)
    assert "survivor" in _admin(broker.bootstrap).list_topics(timeout=10).topics


def test_bad_broker_setting_fails_start_with_kafkas_message(broker: LocalBroker) -> None:
    """A setting Kafka rejects makes start() fail with Kafka's own explanation."""
    broker.properties["node.id"] = "not-a-number"
    with pytest.raises(LocalBrokerError) as failure:
        broker.start(timeout=START_TIMEOUT_S)
    assert "Invalid value not-a-number" in str(failure.value)
    assert not broker.is_running()


def test_wipe_deletes_the_data_dir(broker: LocalBroker) -> None:
    """wipe() stops the broker and removes its data dir."""
    broker.start(timeout=START_TIMEOUT_S)
    broker.wipe()
    assert not broker.is_running()
    assert not broker.dir.exists()
    broker.wipe()  # nothing left to do: still fine


def test_wipe_refuses_a_directory_it_did_not_make(tmp_path: Path) -> None:
    """wipe() never deletes a non-empty directory without our server.properties."""
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(LocalBrokerError, match="not deleting"):
        LocalBroker(port=1, data_dir=precious, out=io.StringIO()).wipe()
    assert (precious / "notes.txt").read_text() == "keep me"


def test_install_is_idempotent_once_cached() -> None:
    """With a complete cache, install_kafka() returns at once and prints nothing."""
    install_kafka(out=io.StringIO())
    out = io.StringIO()
    jar_dir = install_kafka(out=out)
    assert out.getvalue() == ""
    assert (jar_dir / ".complete").is_file()
    assert list(jar_dir.glob("kafka_2.13-*.jar"))


def test_install_without_java_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no java on PATH and an empty cache, the error names the package to install."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("EPHEMCHAT_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(
        LocalBrokerError, match=r"Java 17\+ is needed.*apt-get install openjdk-17-jre-headless"
    ):
        install_kafka(out=io.StringIO())


def test_install_without_maven_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With java but no mvn on PATH and an empty cache, the error names Maven's package."""
    java = shutil.which("java")
    if java is None:
        pytest.skip("needs java on PATH")
    only_java = tmp_path / "bin"
    only_java.mkdir()
    (only_java / "java").symlink_to(os.path.realpath(java))
    monkeypatch.setenv("PATH", str(only_java))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("EPHEMCHAT_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(LocalBrokerError, match="`mvn` is not on PATH: apt-get install maven"):
        install_kafka(out=io.StringIO())
