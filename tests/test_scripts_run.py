"""``scripts/run`` as a user runs it: makes its secret key once (mode 0600), supervises the
monitor (restarts it when it dies) and, on SIGTERM, stops everything it started."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, stop_process, wait_for_port


def children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (Linux /proc)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for kid in map(int, kids):
                if kid not in found:
                    found.add(kid)
                    todo.append(kid)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def run_script(tmp_path):
    procs: list[subprocess.Popen] = []

    def start(port: int) -> tuple[subprocess.Popen, Path]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        env.update({"VENV": str(Path(sys.executable).parent.parent), "PORT": str(port),
                    "SQLITE_PATH": str(tmp_path / "db.sqlite3"),
                    "HUB_SECRET_KEY_FILE": str(tmp_path / "keys" / "secret_key"),
                    "HUB_ADMIN_PASSWORD": "pw-for-tests-only", "PYTHONUNBUFFERED": "1"})
        log = tmp_path / f"run-{port}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "run")], cwd=tmp_path, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc, log

    yield start
    for proc in procs:
        stop_process(proc)


def monitor_pids(log: Path) -> list[int]:
    return [int(p) for p in re.findall(r"slurm monitor running \(pid (\d+)\)", log.read_text())]


def test_run_makes_a_private_key_restarts_the_monitor_and_stops_everything(run_script, tmp_path):
    port = free_port()
    proc, log = run_script(port)
    wait_for_port(port, proc, timeout=120)
    first = wait_until(lambda: monitor_pids(log), "the monitor to start")[0]

    key_file = tmp_path / "keys" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text().strip()) >= 50

    # the monitor dies: it is started again
    os.kill(first, signal.SIGKILL)
    second = wait_until(lambda: monitor_pids(log)[1:], "the monitor to restart")[0]
    assert second != first and alive(second)
    assert "slurm monitor exited with status" in log.read_text()

    started = children(proc.pid)
    assert second in started and len(started) >= 2
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert not [pid for pid in started if alive(pid)]
    assert port_free(port)

    # a second run keeps the same key
    key = key_file.read_text()
    port = free_port()
    proc, log = run_script(port)
    wait_for_port(port, proc, timeout=120)
    assert key_file.read_text() == key
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert port_free(port)
