"""Shared fixtures: real daphne processes and a private Redis.

- ``hub_server(env={...})`` starts ``python -m hub.server`` on a free port, sharing the test
  database (use ``transactional_db`` so the rows you create are visible to it).
- ``redis_server``: a private ``redis-server`` on a free port for this test (stop/start it);
  ``redis_url``: a session-wide one (``REDIS_URL`` from the environment wins).
Nothing here skips: a missing redis-server binary fails the test loudly.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "var" / "test-logs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


def database_env() -> dict[str, str]:
    """Environment that points a child process at the test database."""
    from django.db import connection

    settings_dict = connection.settings_dict
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return {"SQLITE_PATH": str(settings_dict["NAME"])}
    url = urlsplit(os.environ["DATABASE_URL"])
    return {"DATABASE_URL": urlunsplit(url._replace(path="/" + settings_dict["NAME"]))}


def stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    """Signal a process we started and wait for it; SIGKILL if it has not gone in 15 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class HubServer:
    """A real daphne running the hub. ``log_text()`` is everything it printed."""

    def __init__(self, env: dict[str, str], name: str, args: list[str] | None = None) -> None:
        self.port = free_port()
        self.env = env
        self.args = list(args or [])
        self.name = name
        self.proc: subprocess.Popen | None = None
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"{name}-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> "HubServer":
        env = dict(os.environ)
        env.update({"DJANGO_SETTINGS_MODULE": "realtime_project.settings",
                    "HUB_SERVER_NAME": self.name, "PYTHONUNBUFFERED": "1"})
        env.update(database_env())
        env.update(self.env)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub.server", "-b", "127.0.0.1", "-p", str(self.port), *self.args],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_for_port(self.port, self.proc)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop_process(self.proc, sig)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> "HubServer":
        self.stop()
        return self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def hub_server(request):
    servers: list[HubServer] = []

    def start(env: dict[str, str] | None = None, name: str | None = None,
              args: list[str] | None = None) -> HubServer:
        """``args`` go to daphne (e.g. ``["--ping-interval", "1"]``)."""
        server = HubServer({k: str(v) for k, v in (env or {}).items()},
                           name or f"hub-{len(servers) + 1}", args)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


class RedisServer:
    """A private redis-server that keeps nothing on disk (like the machine's own)."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run scripts/setup-system")
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="hub-redis-")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--enable-debug-command", "local"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def redis_server():
    server = RedisServer().start()
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def redis_url():
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = RedisServer().start()
    yield server.url
    server.cleanup()


@pytest.fixture
def make_user(transactional_db):
    """``make_user("alice", staff=False) -> (user, drf_token_key)``."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    def make(username: str, staff: bool = False, password: str = "pw-for-tests-only"):
        user = get_user_model().objects.create_user(username=username, password=password,
                                                    is_staff=staff)
        token, _ = Token.objects.get_or_create(user=user)
        return user, token.key

    return make


# --- tiers: `pytest -m "not e2e"` is the fast unit tier -----------------------------------

# A test that uses one of these starts a real process (daphne, redis-server, Slurm, Chromium,
# node): it is e2e. Marked here from the fixtures it asks for, so no file can forget the mark.
E2E_FIXTURES = frozenset({"hub_server", "redis_server", "redis_url", "browser", "live_hub",
                          "slurm_cluster", "dashboard_server", "node_bin"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if E2E_FIXTURES.intersection(getattr(item, "fixturenames", ())) or \
                item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.e2e)
