"""Starting, watching and stopping the processes a bench run needs (by PID, never by name)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

_log_dir: Path | None = None


def log_dir() -> Path:
    """Where server logs, the private SQLite file and Redis's dir go (one per bench run)."""
    global _log_dir
    if _log_dir is None:
        _log_dir = Path(os.environ.get("BENCH_LOG_DIR") or tempfile.mkdtemp(prefix="hub-bench-"))
        _log_dir.mkdir(parents=True, exist_ok=True)
    return _log_dir

BENCH_CHANNELS = json.dumps({"bench": {"subscribe": "anyone", "publish": "anyone", "history": 0}})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode} before listening "
                               f"on {port}; see {getattr(proc, 'log_path', '?')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of one process (its threads included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


def num_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Proc:
    """A child process with its log file; ``stop()`` ends it by PID (TERM, then KILL)."""

    def __init__(self, name: str, argv: list[str], env: dict | None = None, port: int | None = None,
                 cwd: Path = ROOT) -> None:
        self.name, self.port = name, port
        self.log_path = log_dir() / f"{name}-{port or 'x'}-{int(time.time())}.log"
        self.log = open(self.log_path, "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.popen = subprocess.Popen(argv, cwd=cwd, env=full_env, stdout=self.log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        self.popen.log_path = self.log_path  # type: ignore[attr-defined]
        self.pid = self.popen.pid

    def wait_ready(self, timeout: float = 60.0) -> "Proc":
        if self.port is not None:
            wait_port(self.port, timeout, self.popen)
        return self

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_redis(port: int | None = None) -> Proc:
    port = port or free_port()
    exe = shutil.which("redis-server") or "redis-server"
    p = Proc("redis", [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                       "--appendonly", "no", "--protected-mode", "yes", "--maxclients", "20000",
                       "--dir", str(log_dir())], port=port)
    return p.wait_ready(20)


# The hub has no built-in key: one per bench run, shared by every hub process it starts.
BENCH_SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(48)


def hub_env(redis_url: str | None = None, name: str = "hub-bench", extra: dict | None = None) -> dict:
    env = {
        "DJANGO_SETTINGS_MODULE": "realtime_project.settings",
        "DJANGO_SECRET_KEY": BENCH_SECRET_KEY,
        "HUB_REQUIRE_AUTH": "false",
        "HUB_CHANNELS": BENCH_CHANNELS,
        "HUB_RATE_LIMIT": "100000000",
        "HUB_MAX_CONNECTIONS": "20000",
        "HUB_MAX_CONNECTIONS_PER_USER": "20000",
        # Auth off: every socket is anonymous, from a few addresses (hub.socket.admission).
        "HUB_MAX_ANONYMOUS_CONNECTIONS": "20000",
        "HUB_MAX_CONNECTIONS_PER_ADDRESS": "20000",
        "HUB_SERVER_NAME": name,
        "SQLITE_PATH": str(log_dir() / "bench.sqlite3"),
        "PYTHONUNBUFFERED": "1",
    }
    if redis_url:
        env["REDIS_URL"] = redis_url
    else:
        env["REDIS_URL"] = ""
    env.update(extra or {})
    return env


def migrate(env: dict) -> None:
    """Create the bench's private SQLite database once (the hub's HTTP side may need tables)."""
    marker = log_dir() / ".migrated"
    if marker.exists():
        return
    full = dict(os.environ)
    full.update(env)
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=full,
                   check=True, stdout=subprocess.DEVNULL)
    marker.touch()


SERVERS = ("hub-daphne", "hub-daphne-fallback", "hub-uvicorn", "vanilla-channels", "websockets",
           "socketio", "raw-asyncio")
SOCKETIO_DIR = ROOT / "bench" / "peers" / "socketio"
SOCKETIO_PATH = "/socket.io/?EIO=4&transport=websocket"


def ws_path(kind: str) -> str:
    """The WebSocket path a server kind listens on (socket.io's carries its dialect)."""
    return SOCKETIO_PATH if kind == "socketio" else "/ws/"


def ensure_socketio() -> None:
    """Install the socket.io peer's pinned packages (package-lock.json) when missing."""
    if (SOCKETIO_DIR / "node_modules" / "socket.io" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("the socketio peer needs node and npm")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=SOCKETIO_DIR,
                   check=True, stdout=subprocess.DEVNULL, timeout=300)
EXPERIMENTS: tuple[str, ...] = ()  # bench/experiments servers, only with --servers (none now)


def start_server(kind: str, port: int | None = None, redis_url: str | None = None,
                 name: str = "hub-bench", extra_env: dict | None = None) -> Proc:
    """Start one server under test on 127.0.0.1; returns once it listens."""
    port = port or free_port()
    if kind.startswith("hub-"):
        env = hub_env(redis_url, name, extra_env)
        migrate(env)
        if kind == "hub-daphne-fallback":  # the daphne seam's stock-ASGI path, same process kind
            env["HUB_DAPHNE_FAST_PATH"] = "off"
        if kind.startswith("hub-daphne"):
            argv = [PY, "-m", "hub.server", "-b", "127.0.0.1", "-p", str(port)]
        else:
            argv = [PY, "-m", "uvicorn", "realtime_project.asgi:application", "--host", "127.0.0.1",
                    "--port", str(port), "--no-access-log", "--log-level", "warning",
                    "--ws", "websockets", "--ws-max-size", str(1024 * 1024)]
    elif kind == "vanilla-channels":
        if not redis_url:
            raise ValueError("vanilla-channels needs redis")
        env = {"DJANGO_SETTINGS_MODULE": "bench.peers.vanilla_channels.settings",
               "BENCH_REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
        argv = [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                "bench.peers.vanilla_channels.asgi:application"]
    elif kind == "websockets":
        env = {"PYTHONUNBUFFERED": "1"}
        argv = [PY, "-m", "bench.peers.websockets_server", "--port", str(port)]
    elif kind == "socketio":
        ensure_socketio()
        env = {"NODE_ENV": "production"}
        argv = [shutil.which("node") or "node", str(SOCKETIO_DIR / "server.js"), "--port", str(port)]
    elif kind == "raw-asyncio":
        env = {"PYTHONUNBUFFERED": "1"}
        argv = [PY, "-m", "bench.trivial_server", "--port", str(port)]
    else:
        raise ValueError(kind)
    if not kind.startswith("hub-"):
        env.update(extra_env or {})
    return Proc(kind, argv, env=env, port=port).wait_ready(90)


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for pkg in ("django", "channels", "channels-redis", "daphne", "twisted", "autobahn",
                "uvicorn", "websockets", "redis", "py-spy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    try:
        out["node"] = subprocess.run(["node", "--version"], capture_output=True,
                                     text=True).stdout.strip().removeprefix("v")
        out["socket.io"] = json.loads((SOCKETIO_DIR / "package.json").read_text())["dependencies"]["socket.io"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        out["redis-server"] = subprocess.run(["redis-server", "--version"], capture_output=True,
                                             text=True).stdout.split()[2].removeprefix("v=")
    except (OSError, IndexError):
        pass
    return out


def machine() -> dict:
    import platform

    mem_gb = None
    try:
        with open("/proc/meminfo") as f:
            mem_gb = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "mem_gb": mem_gb, "cpu": cpu, "kernel": platform.release(),
            "os": platform.platform()}


def git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return ""
