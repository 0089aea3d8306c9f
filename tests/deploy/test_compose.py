"""docker-compose.yml, the Dockerfile and Prometheus' config match the project as it is.

No Docker engine runs here, so these read the files and check them against reality: the
services of the topology, the management commands and their options, the files they
mount or copy, the environment names the settings read, and the Kafka durability settings.
"""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands, load_command_class

from ephemchat.nginxconf import PLACEHOLDER_PREFIX, SITE_TEMPLATE, placeholders
from kafka_bridge.local_broker import CHAT_BROKER_PROPERTIES, kafka_version
from tests.support import PROJECT_DIR

COMPOSE_FILE = PROJECT_DIR / "docker-compose.yml"
DOCKERFILE = PROJECT_DIR / "Dockerfile"
DOCKERIGNORE = PROJECT_DIR / ".dockerignore"
SETTINGS_FILE = PROJECT_DIR / "ephemchat" / "settings.py"
# PROTOCOL.md is shared between projects and not always next to the code.
PROTOCOL_CANDIDATES = [
    PROJECT_DIR / "PROTOCOL.md",
    PROJECT_DIR / "docs" / "PROTOCOL.md",
    Path("/work/shared/PROTOCOL.md"),
]
KAFKA_BROKERS = ["kafka-1", "kafka-2", "kafka-3"]
GATEWAY_PORT = 8000


@cache
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def app_services() -> dict[str, dict[str, Any]]:
    """Services that run the project's own image (built from the Dockerfile)."""
    return {name: svc for name, svc in services().items() if "build" in svc}


def command_tokens(command: str | list[str]) -> list[str]:
    tokens = shlex.split(command) if isinstance(command, str) else list(command)
    if tokens[:2] == ["sh", "-c"]:
        tokens = shlex.split(tokens[2])
    return tokens


def manage_py_calls(command: str | list[str]) -> list[list[str]]:
    """Each `python manage.py NAME ARGS...` in a command, as [NAME, *ARGS]."""
    calls: list[list[str]] = []
    segment: list[str] = []
    for token in [*command_tokens(command), "&&"]:
        if token in ("&&", "||", ";"):
            if "manage.py" in segment:
                calls.append(segment[segment.index("manage.py") + 1 :])
            segment = []
        else:
            segment.append(token)
    return calls


def gateway_services() -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in app_services().items()
        if any(call[0] == "runkafkabridge" for call in manage_py_calls(svc.get("command", [])))
    }


def dockerfile_instructions(keyword: str) -> list[str]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [line.split(None, 1)[1] for line in text.splitlines() if line.upper().startswith(keyword + " ")]


def known_env_names() -> set[str]:
    names = set(re.findall(r"""env\.\w+\(\s*["']([A-Z0-9_]+)["']""", SETTINGS_FILE.read_text()))
    for candidate in PROTOCOL_CANDIDATES:
        if candidate.is_file():
            section = candidate.read_text().split("## 4.", 1)[1].split("\n## ", 1)[0]
            names |= set(re.findall(r"`((?:CHAT|KAFKA)_[A-Z0-9_]+)`", section))
            break
    return names


def assert_command_exists(call: list[str], where: str) -> None:
    name, *args = call
    commands = get_commands()
    assert name in commands, f"{where}: `manage.py {name}` is not a command of this project"
    parser = load_command_class(commands[name], name).create_parser("manage.py", name)
    parser.parse_args(args)  # CommandError on an option the command does not have


def test_compose_has_the_whole_topology():
    """3 Kafka brokers, Postgres, migrate and topic-init jobs, 2+ gateways, nginx, Prometheus, Kafka UI."""
    names = set(services())
    assert {*KAFKA_BROKERS, "postgres", "migrate", "topic-init", "nginx", "prometheus", "kafka-ui"} <= names
    assert len(gateway_services()) >= 2
    assert "version" not in compose(), "the `version` key is obsolete in Compose v2"


def test_every_manage_py_call_is_a_real_command_with_real_options():
    """Compose commands and the Dockerfile's CMD name commands (and options) that exist."""
    calls = {
        f"service {name}": manage_py_calls(svc["command"])
        for name, svc in app_services().items()
        if "command" in svc
    }
    calls["Dockerfile CMD"] = manage_py_calls(json.loads(dockerfile_instructions("CMD")[-1]))
    assert [c[0] for c in calls["service topic-init"]] == ["chattopic"]
    assert {"migrate", "collectstatic"} <= {c[0] for c in calls["service migrate"]}
    for where, found in calls.items():
        assert found, f"{where} runs no manage.py command"
        for call in found:
            assert_command_exists(call, where)


def test_gateways_listen_everywhere_behind_proxy_and_wait_for_the_jobs():
    """Each gateway runs runkafkabridge on 0.0.0.0:8000 with proxy headers, healthchecked on /readyz."""
    for name, svc in gateway_services().items():
        (call,) = manage_py_calls(svc["command"])
        assert call == ["runkafkabridge", "--host", "0.0.0.0", "--port", str(GATEWAY_PORT), "--proxy-headers"]
        check = " ".join(svc["healthcheck"]["test"])
        assert f"127.0.0.1:{GATEWAY_PORT}/readyz" in check, name
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert svc["depends_on"]["topic-init"]["condition"] == "service_completed_successfully"
        assert svc.get("init") is True, f"{name}: PID 1 must forward SIGTERM so the gateway drains"
        grace = int(str(svc["stop_grace_period"]).rstrip("s"))
        assert grace > 7, f"{name}: stop_grace_period must exceed the drain bound (delivery timeout + 2 s)"


def test_topic_init_creates_the_topic_with_replication_factor_3_once_all_brokers_are_up():
    svc = services()["topic-init"]
    assert str(svc["environment"]["CHAT_REPLICATION_FACTOR"]) == "3"
    for broker in KAFKA_BROKERS:
        assert svc["depends_on"][broker]["condition"] == "service_healthy"


def test_kafka_is_three_kraft_brokers_with_rf_3_and_min_isr_2():
    """One cluster id and quorum; every broker replicates 3 ways and requires 2 in sync."""
    envs = {name: services()[name]["environment"] for name in KAFKA_BROKERS}
    voters = {f"{i}@{name}:9093" for i, name in enumerate(KAFKA_BROKERS, start=1)}
    assert len({env["CLUSTER_ID"] for env in envs.values()}) == 1
    for i, (name, env) in enumerate(envs.items(), start=1):
        image = services()[name]["image"]
        assert image == f"apache/kafka:{kafka_version()}", (
            "compose and the local broker run one Kafka version"
        )
        assert int(env["KAFKA_NODE_ID"]) == i
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) == 2
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == 2
        assert int(env["KAFKA_LOG_RETENTION_CHECK_INTERVAL_MS"]) == 15000
        # The expiry settings are those of the local broker (kafka_bridge/local_broker.py).
        for key, value in CHAT_BROKER_PROPERTIES.items():
            if "replication" in key or "isr" in key or key == "num.partitions":
                continue
            env_name = "KAFKA_" + key.upper().replace(".", "_")
            assert str(env[env_name]).lower() == value, f"{name}: {env_name} differs from the local broker"
    bootstrap = app_services()["topic-init"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
    assert set(bootstrap.split(",")) == {f"{name}:9092" for name in KAFKA_BROKERS}


def test_chat_and_kafka_environment_names_are_ones_the_project_reads():
    """Each CHAT_*/KAFKA_* name our image gets, or compose interpolates, is in PROTOCOL.md §4 or settings."""
    known = known_env_names()
    assert {"KAFKA_BOOTSTRAP_SERVERS", "CHAT_TOPIC", "CHAT_REPLICATION_FACTOR"} <= known
    used = {
        key
        for svc in app_services().values()
        for key in svc.get("environment", {})
        if key.startswith(("CHAT_", "KAFKA_"))
    }
    used |= set(re.findall(r"\$\{((?:CHAT|KAFKA)_[A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    assert used, "no CHAT_/KAFKA_ names found: the parser is broken"
    assert used <= known, f"unknown names: {sorted(used - known)}"
    settings_names = set(re.findall(r"""env\.\w+\(\s*["']([A-Z0-9_]+)["']""", SETTINGS_FILE.read_text()))
    for svc in app_services().values():
        for key in svc["environment"]:
            assert key in settings_names, f"{key} is not read by ephemchat/settings.py"


def test_secrets_have_no_defaults():
    """DJANGO_SECRET_KEY and the database password must be set by whoever runs compose."""
    text = COMPOSE_FILE.read_text()
    for svc in app_services().values():
        env = svc["environment"]
        assert re.fullmatch(r"\$\{DJANGO_SECRET_KEY:\?[^}]+\}", env["DJANGO_SECRET_KEY"])
        assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]
        assert str(env["DJANGO_DEBUG"]).lower() == "false"
    assert services()["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert not re.search(r"\$\{(DJANGO_SECRET_KEY|POSTGRES_PASSWORD):?-", text), "a secret has a default"


def test_allowed_hosts_admit_healthchecks_and_prometheus():
    """Django rejects unknown Host headers: 127.0.0.1 (healthchecks) and each gateway name (scrapes)."""
    for svc in gateway_services().values():
        hosts = svc["environment"]["DJANGO_ALLOWED_HOSTS"].split(",")
        assert "127.0.0.1" in hosts
        assert set(gateway_services()) <= set(hosts)


def test_nginx_uses_the_repo_config_and_routes_to_every_gateway():
    """The mounted template is deploy/nginx/ephemchat.conf, each placeholder is set, each gateway listed."""
    svc = services()["nginx"]
    mounts = {}
    for volume in svc["volumes"]:
        source, target, *_ = volume.split(":")
        mounts[target] = source
    template_target = next(t for t in mounts if t.startswith("/etc/nginx/templates/"))
    assert template_target.endswith(".conf.template")
    assert (PROJECT_DIR / mounts[template_target]).resolve() == SITE_TEMPLATE
    env = svc["environment"]
    needed = placeholders(SITE_TEMPLATE.read_text())
    assert needed == {"EPHEMCHAT_LISTEN", "EPHEMCHAT_UPSTREAM_SERVERS", "EPHEMCHAT_STATIC_ROOT"}
    assert needed <= set(env)
    assert env["NGINX_ENVSUBST_FILTER"] == f"^{PLACEHOLDER_PREFIX}", "envsubst must leave nginx's $vars alone"
    servers = re.findall(r"server\s+([\w.-]+):(\d+)", env["EPHEMCHAT_UPSTREAM_SERVERS"])
    assert sorted(servers) == sorted((name, str(GATEWAY_PORT)) for name in gateway_services())
    assert mounts[env["EPHEMCHAT_STATIC_ROOT"]] == "static"
    migrate_mounts = {v.split(":")[1]: v.split(":")[0] for v in services()["migrate"]["volumes"]}
    assert migrate_mounts[env["EPHEMCHAT_STATIC_ROOT"]] == "static", "collectstatic fills what nginx serves"
    assert app_services()["migrate"]["environment"]["DJANGO_STATIC_ROOT"] == env["EPHEMCHAT_STATIC_ROOT"]
    published = svc["ports"][0].rsplit(":", 1)[1]
    assert published == env["EPHEMCHAT_LISTEN"]


def test_prometheus_scrapes_every_gateway():
    svc = services()["prometheus"]
    source = next(
        v.split(":")[0] for v in svc["volumes"] if v.split(":")[1] == "/etc/prometheus/prometheus.yml"
    )
    config = yaml.safe_load((PROJECT_DIR / source).read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        if job.get("metrics_path", "/metrics") == "/metrics"
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert {f"{name}:{GATEWAY_PORT}" for name in gateway_services()} <= targets


def test_every_bind_mount_exists_in_the_repo():
    for name, svc in services().items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (PROJECT_DIR / source).exists(), f"{name} mounts {source}, which does not exist"


def test_dockerfile_copies_paths_that_exist_and_ignores_secrets():
    copies = dockerfile_instructions("COPY")
    assert copies
    for args in copies:
        sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
        for source in sources:
            assert (PROJECT_DIR / source).exists(), f"Dockerfile copies {source}, which does not exist"
    ignored = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    assert {".env", ".venv", "var", ".git"} <= ignored
    for needed in ("manage.py", "pyproject.toml", "ephemchat", "rooms", "kafka_bridge"):
        assert (PROJECT_DIR / needed).exists()
        assert needed not in ignored, f".dockerignore leaves {needed} out of the image"
    assert f"EXPOSE {GATEWAY_PORT}" in DOCKERFILE.read_text()


@pytest.mark.parametrize("path", [COMPOSE_FILE, PROJECT_DIR / "deploy" / "prometheus" / "prometheus.yml"])
def test_yaml_files_parse(path: Path):
    assert isinstance(yaml.safe_load(path.read_text()), dict)
