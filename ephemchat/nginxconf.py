"""nginx for the local cluster: render deploy/nginx/ephemchat.conf, write a main config.

deploy/nginx/ephemchat.conf is the one nginx config of the project. docker-compose hands
it to the nginx image, which renders it with envsubst; `render_site` does the same here:
it replaces `${NAME}` (or `$NAME`) for exactly the names it is given, and leaves nginx's
own lower-case variables alone. Everything here is pure except the last three functions,
which look for nginx and write and check the local config.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
SITE_TEMPLATE = PROJECT_DIR / "deploy" / "nginx" / "ephemchat.conf"
PLACEHOLDER_PREFIX = "EPHEMCHAT_"
# Where distributions put nginx; /usr/sbin is often not on a normal user's PATH.
NGINX_LOCATIONS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
# Each proxied WebSocket holds two connections (client and gateway): about 1000 sockets.
WORKER_CONNECTIONS = 2048
# A gateway that refused a connection is skipped this long (nginx passive health check).
FAIL_TIMEOUT = "5s"
_PLACEHOLDER = re.compile(r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


class NginxConfigError(Exception):
    """The nginx config could not be rendered; the message names what is missing."""


def placeholders(template: str) -> set[str]:
    """The `EPHEMCHAT_*` names a template uses."""
    names = {m.group("braced") or m.group("bare") for m in _PLACEHOLDER.finditer(template)}
    return {name for name in names if name.startswith(PLACEHOLDER_PREFIX)}


def render_site(template: str, values: Mapping[str, str]) -> str:
    """envsubst semantics for the given names; every `EPHEMCHAT_*` placeholder must have a value."""
    missing = sorted(placeholders(template) - set(values))
    if missing:
        raise NginxConfigError(f"no value for {', '.join(missing)} in {SITE_TEMPLATE.name}")

    def substitute(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        return values[name] if name in values else match.group(0)

    return _PLACEHOLDER.sub(substitute, template)


def upstream_servers(addresses: Sequence[str], *, indent: str = "    ") -> str:
    """The upstream block's body for gateways at `host:port` addresses."""
    if not addresses:
        raise NginxConfigError("at least one gateway is needed")
    lines = [f"server {address} max_fails=1 fail_timeout={FAIL_TIMEOUT};" for address in addresses]
    return f"\n{indent}".join(lines)


def _quote(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class LocalNginxLayout:
    """Every file a local nginx writes lives under `root`; nothing needs root's paths."""

    root: Path

    @property
    def main_conf(self) -> Path:
        return self.root / "nginx.conf"

    @property
    def site_conf(self) -> Path:
        return self.root / "ephemchat.conf"

    @property
    def pid_file(self) -> Path:
        return self.root / "nginx.pid"

    @property
    def error_log(self) -> Path:
        return self.root / "error.log"

    @property
    def access_log(self) -> Path:
        return self.root / "access.log"

    @property
    def temp_dir(self) -> Path:
        return self.root / "tmp"


def main_config(layout: LocalNginxLayout, *, mime_types: Path | None, worker_user: str | None) -> str:
    """A main nginx.conf that runs in the foreground and includes the rendered site."""
    tmp = layout.temp_dir
    user = f"user {worker_user};\n" if worker_user else ""
    types = (
        f"    include {_quote(mime_types)};\n"
        if mime_types
        else "    types { text/css css; application/javascript js; }\n"
    )
    return (
        "# Written by `manage.py runcluster` (ephemchat/nginxconf.py); rewritten on every start.\n"
        "daemon off;\n"
        f"{user}"
        "worker_processes 1;\n"
        f"pid {_quote(layout.pid_file)};\n"
        f"error_log {_quote(layout.error_log)} warn;\n"
        f"events {{ worker_connections {WORKER_CONNECTIONS}; }}\n"
        "http {\n"
        f"{types}"
        "    default_type application/octet-stream;\n"
        "    sendfile on;\n"
        f"    access_log {_quote(layout.access_log)};\n"
        f"    client_body_temp_path {_quote(tmp / 'client_body')};\n"
        f"    proxy_temp_path {_quote(tmp / 'proxy')};\n"
        f"    fastcgi_temp_path {_quote(tmp / 'fastcgi')};\n"
        f"    uwsgi_temp_path {_quote(tmp / 'uwsgi')};\n"
        f"    scgi_temp_path {_quote(tmp / 'scgi')};\n"
        f"    include {_quote(layout.site_conf)};\n"
        "}\n"
    )


def find_nginx(explicit: str | None = None) -> str | None:
    """The nginx executable: `explicit`, else on PATH, else a usual sbin location."""
    if explicit:
        return explicit if os.path.isfile(explicit) and os.access(explicit, os.X_OK) else None
    if found := shutil.which("nginx"):
        return found
    return next((p for p in NGINX_LOCATIONS if os.path.isfile(p) and os.access(p, os.X_OK)), None)


def mime_types_path(nginx: str) -> Path | None:
    """The `mime.types` next to the nginx build's default config, if there is one."""
    done = subprocess.run([nginx, "-V"], capture_output=True, text=True, timeout=10, check=False)
    match = re.search(r"--conf-path=(\S+)", done.stderr + done.stdout)
    candidates = [Path(match.group(1)).parent / "mime.types"] if match else []
    candidates.append(Path("/etc/nginx/mime.types"))
    return next((c for c in candidates if c.is_file()), None)


def prepare_local_nginx(
    *, binary: str, root: Path, listen: str, gateways: Sequence[str], static_root: Path
) -> list[str]:
    """Write the main config and the rendered site under `root`, check them with `nginx -t`.

    Returns the arguments that run this nginx in the foreground with every path under `root`.
    """
    layout = LocalNginxLayout(root)
    layout.temp_dir.mkdir(parents=True, exist_ok=True)
    values = {
        "EPHEMCHAT_LISTEN": listen,
        "EPHEMCHAT_UPSTREAM_SERVERS": upstream_servers(gateways),
        "EPHEMCHAT_STATIC_ROOT": str(static_root),
    }
    layout.site_conf.write_text(render_site(SITE_TEMPLATE.read_text(), values))
    # As root, nginx's workers would drop to `nobody`, who may not read the checkout.
    user = pwd.getpwuid(static_root.stat().st_uid).pw_name if os.geteuid() == 0 else None
    layout.main_conf.write_text(main_config(layout, mime_types=mime_types_path(binary), worker_user=user))
    args = ["-p", f"{layout.root}/", "-c", str(layout.main_conf), "-e", str(layout.error_log)]
    checked = subprocess.run([binary, "-t", "-q", *args], capture_output=True, text=True, check=False)
    if checked.returncode != 0:
        raise NginxConfigError(f"nginx rejected {layout.main_conf}:\n{checked.stderr}")
    return args
