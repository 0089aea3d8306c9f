"""A real, local Apache Kafka broker for development, tests and CI.

`install_kafka()` fills a jar cache outside git from `broker/pom.xml` with Maven;
`LocalBroker` formats a KRaft data directory and runs `kafka.Kafka` (broker and controller
in one JVM) from those jars. Nothing here runs at import time.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol, Self

PROJECT_DIR = Path(__file__).resolve().parent.parent
POM_FILE = Path(__file__).resolve().parent / "broker" / "pom.xml"
CACHE_ENV_VAR = "EPHEMCHAT_CACHE_DIR"
MARKER_NAME = ".complete"
MIN_JAVA = 17  # Kafka 4.x brokers need Java 17.
LOG_TAIL_LINES = 40
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Settings for chat (DESIGN.md decision 4): expired segments are checked often and leave
# the disk soon; topics are created on purpose, never by a stray producer.
CHAT_BROKER_PROPERTIES: dict[str, str] = {
    "log.retention.check.interval.ms": "15000",
    "log.segment.delete.delay.ms": "1000",
    "group.initial.rebalance.delay.ms": "0",
    "auto.create.topics.enable": "false",
    "num.partitions": "1",
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
}
_PROPERTIES_HEADER = "# Written by kafka_bridge/local_broker.py; rewritten on every start.\n"


class LocalBrokerError(Exception):
    """The local broker could not be installed, started or stopped; the message says how to fix it."""


class TextSink(Protocol):
    """Where progress goes: a text stream or Django's `OutputWrapper`."""

    def write(self, s: str, /) -> object: ...


# --- install -------------------------------------------------------------------------


def kafka_version(pom: Path = POM_FILE) -> str:
    """The Kafka version pinned in the pom (`<kafka.version>`)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", ns)
    if node is None or not (node.text or "").strip():
        raise LocalBrokerError(f"{pom} has no <kafka.version> property")
    return (node.text or "").strip()


def cache_root() -> Path:
    """`$EPHEMCHAT_CACHE_DIR`, else `$XDG_CACHE_HOME/ephemchat`, else `~/.cache/ephemchat`."""
    if env := os.environ.get(CACHE_ENV_VAR):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "ephemchat"


def kafka_jar_dir() -> Path:
    return cache_root() / f"kafka-{kafka_version()}"


def _pom_digest() -> str:
    # The marker records the pom it was built from, so a changed pom refills the cache.
    return hashlib.sha256(POM_FILE.read_bytes()).hexdigest()


def _cache_complete(jar_dir: Path) -> bool:
    marker = jar_dir / MARKER_NAME
    return marker.is_file() and marker.read_text().strip() == _pom_digest()


def find_java() -> str:
    """Path of the `java` executable: `$JAVA_HOME/bin/java`, else `java` on PATH."""
    if java_home := os.environ.get("JAVA_HOME"):
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    if found := shutil.which("java"):
        return found
    raise LocalBrokerError(
        f"Java {MIN_JAVA}+ is needed to run Kafka and `java` is not on PATH: "
        "apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"
    )


def _check_java_version(java: str) -> None:
    done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if match is None:
        return  # An unusual build; let the broker itself complain if it is too old.
    major = int(match.group(1))
    if major == 1 and match.group(2):  # "1.8.0_392" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise LocalBrokerError(
            f"Java {MIN_JAVA}+ is needed to run Kafka, but {java} is Java {major}: "
            "apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"
        )


def install_kafka(*, out: TextSink | None = None) -> Path:
    """Make sure the Kafka jars are in the cache and return their directory.

    Idempotent: a complete cache returns at once. Otherwise Maven copies the jars of
    `broker/pom.xml` (downloading them on first use) into a temp dir that is then renamed,
    so an interrupted install never looks complete. Progress goes to `out` (default stdout).
    """
    out = out or sys.stdout
    jar_dir = kafka_jar_dir()
    if _cache_complete(jar_dir):
        return jar_dir
    _check_java_version(find_java())
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalBrokerError(
            "Maven is needed once to fetch the Kafka jars and `mvn` is not on PATH: apt-get install maven"
        )
    jar_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = jar_dir.parent / f"{jar_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    out.write(f"Installing Kafka {kafka_version()} jars into {jar_dir} (Maven, first run only)\n")
    cmd = [
        mvn,
        "-B",
        "-Dstyle.color=never",
        # Batch mode hides transfer progress; this shows one line per downloaded file.
        "-Dorg.slf4j.simpleLogger.log.org.apache.maven.cli.transfer.Slf4jMavenTransferListener=info",
        "-f",
        str(POM_FILE),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp_dir}",
        "-DincludeScope=runtime",
    ]
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=POM_FILE.parent
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = _ANSI.sub("", raw).rstrip()
            tail.append(line + "\n")
            # One "Copying x.jar" line per jar is noise; downloads and errors are not.
            if line.strip() and "] Copying " not in line:
                out.write(f"  {line}\n")
    if proc.returncode != 0:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise LocalBrokerError(
            f"Maven could not fetch the Kafka jars (exit {proc.returncode}); is Maven Central reachable?\n"
            + "".join(tail)
        )
    (tmp_dir / MARKER_NAME).write_text(_pom_digest() + "\n")
    if jar_dir.exists():
        # A stale or partial cache (or one filled meanwhile by another process).
        if _cache_complete(jar_dir):
            shutil.rmtree(tmp_dir, ignore_errors=True)
            return jar_dir
        shutil.rmtree(jar_dir)
    try:
        tmp_dir.rename(jar_dir)
    except OSError:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if not _cache_complete(jar_dir):
            raise
    jars = len(list(jar_dir.glob("*.jar")))
    out.write(f"Installed {jars} jars in {time.monotonic() - started:.1f} s\n")
    return jar_dir


# --- ports ---------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same as the JVM's server sockets: a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_pair() -> tuple[int, int]:
    """Two free ports `(p, p + 1)` for a broker and its controller, if such a pair is found."""
    for _ in range(50):
        port = free_port()
        if port < 65535 and port_is_free(port + 1):
            return port, port + 1
    return free_port(), free_port()


def _port_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# --- the broker ----------------------------------------------------------------------


def _new_cluster_id() -> str:
    # Kafka's Uuid.toString(): base64url, no padding; a leading "-" would read as an option.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _properties(values: dict[str, str]) -> str:
    def esc(text: str) -> str:
        return text.replace("\\", "\\\\")

    return _PROPERTIES_HEADER + "".join(f"{k}={esc(v)}\n" for k, v in values.items())


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open(errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines))
    except OSError:
        return ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class LocalBroker:
    """One KRaft broker+controller JVM on 127.0.0.1, with its own data directory.

    `start()` returns the bootstrap address once the broker answers a metadata request.
    The pid is kept in `<data_dir>/broker.pid`, so another process (for example
    `manage.py localkafka stop`) can find and stop a detached broker.
    """

    port: int = 9092
    controller_port: int | None = None  # default: port + 1
    data_dir: Path | None = None  # default: <project>/var/kafka-<port>
    log_file: Path | None = None  # default: <data_dir>/server.log
    heap: str = "512m"
    properties: dict[str, str] = field(default_factory=dict)  # extra broker settings, override ours
    out: TextSink | None = None  # default: sys.stdout at the time of writing
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _console: IO[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.controller_port is None:
            self.controller_port = self.port + 1
        self.data_dir = Path(self.data_dir) if self.data_dir else PROJECT_DIR / "var" / f"kafka-{self.port}"
        self.log_file = Path(self.log_file) if self.log_file else self.data_dir / "server.log"

    # Paths, typed non-optional after __post_init__.
    @property
    def dir(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir

    @property
    def log_path(self) -> Path:
        assert self.log_file is not None
        return self.log_file

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def console_file(self) -> Path:
        """The JVM's own stdout/stderr (crashes before logging starts land here)."""
        return self.dir / "console.log"

    @property
    def pid_file(self) -> Path:
        return self.dir / "broker.pid"

    @property
    def _log_dirs(self) -> Path:
        return self.dir / "data"

    def _say(self, text: str) -> None:
        (self.out or sys.stdout).write(text + "\n")

    def server_properties(self) -> dict[str, str]:
        values = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self._log_dirs),
            **CHAT_BROKER_PROPERTIES,
        }
        values.update(self.properties)
        return values

    def _log4j2_properties(self) -> str:
        log = str(self.log_path).replace("\\", "\\\\")
        # Rolling and bounded: a dev broker left running must not fill the disk.
        return (
            _PROPERTIES_HEADER
            + "status = warn\n"
            + "appender.file.type = RollingFile\n"
            + "appender.file.name = FILE\n"
            + f"appender.file.fileName = {log}\n"
            + f"appender.file.filePattern = {log}.%i\n"
            + "appender.file.layout.type = PatternLayout\n"
            + "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            + "appender.file.policies.type = Policies\n"
            + "appender.file.policies.size.type = SizeBasedTriggeringPolicy\n"
            + "appender.file.policies.size.size = 20MB\n"
            + "appender.file.strategy.type = DefaultRolloverStrategy\n"
            + "appender.file.strategy.max = 2\n"
            + "rootLogger.level = INFO\n"
            + "rootLogger.appenderRef.file.ref = FILE\n"
            + "logger.request.name = kafka.request.logger\n"
            + "logger.request.level = WARN\n"
        )

    # --- process bookkeeping ---------------------------------------------------------

    def pid(self) -> int | None:
        """Pid of this data dir's running broker (ours or one started by another process)."""
        if self._proc is not None:
            return self._proc.pid if self._proc.poll() is None else None
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) and self._is_our_broker(pid) else None

    def _is_our_broker(self, pid: int) -> bool:
        # Guard against a recycled pid: the command line must name our server.properties.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return not Path("/proc").is_dir()  # no procfs: trust the pid file
        return b"kafka.Kafka" in cmdline and str(self.dir / "server.properties").encode() in cmdline

    def is_running(self) -> bool:
        return self.pid() is not None

    def _fail(self, what: str) -> LocalBrokerError:
        parts = [f"{what}\nbroker log: {self.log_path}"]
        if log := _tail(self.log_path):
            parts.append(f"--- last lines of {self.log_path.name} ---\n{log}")
        if console := _tail(self.console_file, 20):
            parts.append(f"--- last lines of {self.console_file.name} ---\n{console}")
        return LocalBrokerError("\n".join(parts))

    # --- lifecycle -------------------------------------------------------------------

    def _format_storage(self, java: str, classpath: str) -> None:
        if (self._log_dirs / "meta.properties").is_file():
            return  # Already formatted: keep the topics and their data.
        cmd = [java, "-Xmx256m", f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}"]
        cmd += ["-cp", classpath, "kafka.tools.StorageTool", "format", "--standalone"]
        cmd += ["-t", _new_cluster_id(), "-c", str(self.dir / "server.properties")]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise LocalBrokerError(
                f"formatting Kafka storage in {self._log_dirs} failed (exit {done.returncode}):\n"
                + done.stdout
                + done.stderr
            )

    def start(self, timeout: float = 60) -> str:
        """Start the broker and wait until it answers a metadata request; return its bootstrap."""
        if self.is_running():
            raise LocalBrokerError(
                f"a broker for {self.dir} is already running (pid {self.pid()}); stop it first"
            )
        for port in (self.port, self.controller_port):
            assert port is not None
            if not port_is_free(port):
                raise LocalBrokerError(
                    f"port {port} on 127.0.0.1 is already in use by another process; "
                    "stop that process or choose another port"
                )
        jar_dir = install_kafka(out=self.out)
        java = find_java()
        classpath = str(jar_dir / "*")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        (self.dir / "server.properties").write_text(_properties(self.server_properties()))
        (self.dir / "log4j2.properties").write_text(self._log4j2_properties())
        self._format_storage(java, classpath)

        cmd = [java, f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20"]
        cmd += ["-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true"]
        cmd += [
            f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.dir}",
        ]
        cmd += ["-cp", classpath, "kafka.Kafka", str(self.dir / "server.properties")]
        self._say(f"Kafka broker starting on {self.bootstrap}; log: {self.log_path}")
        started = time.monotonic()
        self._console = self.console_file.open("ab")
        # Own session: Ctrl-C in a terminal reaches us, and we stop the broker cleanly.
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid_file.write_text(f"{self._proc.pid}\n")
        try:
            self._wait_ready(started + timeout)
        except BaseException:
            self.stop(timeout=10)
            raise
        self._say(f"Kafka broker ready on {self.bootstrap} in {time.monotonic() - started:.1f} s")
        return self.bootstrap

    def _wait_ready(self, deadline: float) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        assert self._proc is not None
        # Cheap TCP polling first, so librdkafka's reconnect backoff does not delay readiness.
        while not _port_accepts(self.port):
            self._check_alive()
            if time.monotonic() > deadline:
                raise self._fail(f"Kafka broker did not open port {self.port} in time")
            time.sleep(0.1)
        admin = AdminClient(
            {"bootstrap.servers": self.bootstrap, "log_level": 0, "reconnect.backoff.max.ms": 500}
        )
        while True:
            self._check_alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._fail(f"Kafka broker on {self.bootstrap} did not answer metadata requests in time")
            try:
                if admin.list_topics(timeout=min(2.0, remaining)).brokers:
                    return
            except KafkaException:
                pass
            time.sleep(0.1)

    def _check_alive(self) -> None:
        assert self._proc is not None
        if (code := self._proc.poll()) is not None:
            raise self._fail(f"Kafka broker exited during start-up (exit code {code})")

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            try:
                os.killpg(pid, sig)  # our broker leads its own process group
            except PermissionError:
                os.kill(pid, sig)

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while _pid_alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _cleanup(self) -> None:
        self._proc = None
        if self._console is not None:
            self._console.close()
            self._console = None
        self.pid_file.unlink(missing_ok=True)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (Kafka's clean shutdown), then SIGKILL after `timeout` seconds. Idempotent."""
        pid = self.pid()
        if pid is not None:
            self._signal(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout):
                self._say(f"Kafka broker (pid {pid}) did not stop in {timeout:g} s; killing it")
                self._signal(pid, signal.SIGKILL)
                self._wait_exit(pid, 10)
        self._cleanup()

    def kill(self) -> None:
        """SIGKILL at once, like a crash (the data dir stays as the crash left it)."""
        pid = self.pid()
        if pid is not None:
            self._signal(pid, signal.SIGKILL)
            self._wait_exit(pid, 10)
        self._cleanup()

    def wipe(self) -> None:
        """Stop the broker and delete its data directory (topics, messages, logs)."""
        self.stop()
        if not self.dir.exists():
            return
        # Delete only a directory this module made, never a mistyped path.
        ours = (self.dir / "server.properties").is_file() and (self.dir / "server.properties").read_text(
            errors="replace"
        ).startswith(_PROPERTIES_HEADER)
        if not ours and any(self.dir.iterdir()):
            raise LocalBrokerError(f"{self.dir} does not look like a local broker data dir; not deleting it")
        shutil.rmtree(self.dir)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
