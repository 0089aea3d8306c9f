"""deploy/nginx/ephemchat.conf renders like the nginx image renders it, and real nginx accepts it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from ephemchat import nginxconf
from ephemchat.nginxconf import LocalNginxLayout, NginxConfigError, render_site, upstream_servers


def local_values(static_root: Path) -> dict[str, str]:
    return {
        "EPHEMCHAT_LISTEN": "127.0.0.1:18080",
        "EPHEMCHAT_UPSTREAM_SERVERS": upstream_servers(["127.0.0.1:18001", "127.0.0.1:18002"]),
        "EPHEMCHAT_STATIC_ROOT": str(static_root),
    }


def test_render_substitutes_only_the_given_names(tmp_path):
    """Like envsubst with a filter: our names are replaced, nginx's own $variables stay."""
    template = "listen ${EPHEMCHAT_LISTEN}; set $x $EPHEMCHAT_LISTEN; proxy_set_header Upgrade $http_upgrade;"
    assert render_site(template, {"EPHEMCHAT_LISTEN": "8080"}) == (
        "listen 8080; set $x 8080; proxy_set_header Upgrade $http_upgrade;"
    )


def test_render_refuses_a_placeholder_without_a_value():
    with pytest.raises(NginxConfigError, match="EPHEMCHAT_STATIC_ROOT"):
        render_site("alias ${EPHEMCHAT_STATIC_ROOT}/;", {})


def test_upstream_servers_lists_each_gateway_with_passive_health_checks():
    body = upstream_servers(["127.0.0.1:1", "127.0.0.1:2"])
    assert body.splitlines() == [
        "server 127.0.0.1:1 max_fails=1 fail_timeout=5s;",
        "    server 127.0.0.1:2 max_fails=1 fail_timeout=5s;",
    ]
    with pytest.raises(NginxConfigError):
        upstream_servers([])


def test_the_site_carries_websockets_proxy_headers_and_timeouts():
    """The things a gateway behind nginx depends on are in the one config file."""
    site = render_site(nginxconf.SITE_TEMPLATE.read_text(), local_values(Path("/srv/static")))
    for line in (
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Forwarded-For $remote_addr;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Forwarded-Port $remote_port;",
        "proxy_connect_timeout 2s;",
        "proxy_next_upstream error timeout;",
        "proxy_read_timeout 1h;",
        "alias /srv/static/;",
        "server 127.0.0.1:18002 max_fails=1 fail_timeout=5s;",
    ):
        assert line in site, line
    assert "${EPHEMCHAT_" not in site
    assert "$EPHEMCHAT_" not in site


def test_real_nginx_accepts_the_rendered_local_config(tmp_path):
    """`nginx -t` passes on exactly what `runcluster` writes, with every path under its own dir."""
    binary = nginxconf.find_nginx()
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    root = tmp_path / "nginx"
    args = nginxconf.prepare_local_nginx(
        binary=binary, root=root, listen="127.0.0.1:18080", gateways=["127.0.0.1:18001"], static_root=tmp_path
    )
    done = subprocess.run([binary, "-t", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "test is successful" in done.stderr
    layout = LocalNginxLayout(root)
    main = layout.main_conf.read_text()
    assert "daemon off;" in main
    for path in (layout.pid_file, layout.error_log, layout.access_log, layout.temp_dir, layout.site_conf):
        assert str(path) in main


def test_a_config_nginx_rejects_is_a_clear_error(tmp_path, monkeypatch):
    binary = nginxconf.find_nginx()
    if binary is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    broken = tmp_path / "broken.conf"
    broken.write_text("server { listen ${EPHEMCHAT_LISTEN}; no_such_directive on; }\n")
    monkeypatch.setattr(nginxconf, "SITE_TEMPLATE", broken)
    with pytest.raises(NginxConfigError, match="no_such_directive"):
        nginxconf.prepare_local_nginx(
            binary=binary,
            root=tmp_path / "nginx",
            listen="127.0.0.1:18080",
            gateways=["a:1"],
            static_root=tmp_path,
        )


def test_runcluster_without_nginx_is_a_clear_error_and_starts_nothing(tmp_path):
    with pytest.raises(CommandError, match="apt-get install nginx"):
        call_command("runcluster", nginx=str(tmp_path / "no-nginx"), run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
