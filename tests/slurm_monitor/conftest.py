"""Fixtures for the Slurm monitor's tests.

- ``monitor_process(args, env)``: ``manage.py run_slurm_monitor`` as a real subprocess on the
  test database; ``wait_for_log``, ``stop(signal)``.
- ``fake_slurm``: a directory of executable ``squeue``/``scontrol``/``sinfo`` that log each
  call and print whatever JSON the test wrote (``set_jobs``/``set_nodes``), for the monitor's
  ``SLURM_MONITOR_BIN_DIR``.
- ``slurm_cluster``: the real one-node Slurm cluster, brought up by ``scripts/setup-slurm``
  when it is not running (never skipped: fails loudly if it cannot be started).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ARTIFACTS, ROOT, database_env
from tests.slurm_monitor import shapes


class MonitorProcess:
    def __init__(self, args: list[str], env: dict[str, str], name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"{name}-{int(time.time() * 1000)}.log"
        full_env = dict(os.environ)
        full_env.update({"DJANGO_SETTINGS_MODULE": "realtime_project.settings", "PYTHONUNBUFFERED": "1"})
        full_env.update(database_env())
        full_env.update(env)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "manage.py", "run_slurm_monitor", *args],
                                         cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_text().count(text) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"monitor log never showed {text!r} x{count}:\n{self.log_text()[-4000:]}")

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                raise AssertionError(f"monitor ignored {signal.Signals(sig).name}:\n{self.log_text()[-3000:]}")
        return self.proc.returncode


@pytest.fixture
def monitor_process():
    started: list[MonitorProcess] = []

    def start(args: list[str], env: dict[str, str] | None = None, name: str = "monitor") -> MonitorProcess:
        process = MonitorProcess(args, {k: str(v) for k, v in (env or {}).items()}, name)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.proc.kill()
            process.proc.wait(timeout=10)


FAKE_COMMAND = """#!/bin/sh
# A stand-in for Slurm's {name}: logs the call, prints the JSON the test wrote.
echo "{name} $*" >> "{dir}/calls.log"
case "$*" in
  --version) echo "slurm 25.11.0" ;;
  *--only-job-state*) cat "{dir}/states.txt" ;;
  *) cat "{dir}/{output}" ;;
esac
"""


class FakeSlurm:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        for name, output in (("squeue", "squeue.json"), ("scontrol", "nodes.json"), ("sinfo", "nodes.json")):
            script = directory / name
            script.write_text(FAKE_COMMAND.format(name=name, dir=directory, output=output))
            script.chmod(0o755)
        self.set_jobs([])
        self.set_nodes(shapes.NODES)

    def _write(self, name: str, doc: dict[str, Any]) -> None:
        tmp = self.dir / (name + ".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.dir / name)  # the monitor never reads half a file

    def set_jobs(self, jobs: list[dict[str, Any]]) -> None:
        """The full JSON (also answered to ``--jobs=``, as 22.05 does) and the state tier's rows."""
        doc = shapes.squeue_doc("25.11", jobs)
        rows = "".join(f"{j['job_id']}|{j['job_state'][-1] if len(j['job_state']) > 1 else j['job_state'][0]}|N/A\n"
                       for j in doc["jobs"])
        self._write("squeue.json", doc)  # first: a detail fetch is never older than the rows
        tmp = self.dir / "states.txt.tmp"
        tmp.write_text(rows)
        os.replace(tmp, self.dir / "states.txt")

    def set_nodes(self, nodes: list[dict[str, Any]]) -> None:
        self._write("nodes.json", shapes.nodes_doc("25.11", nodes))

    def calls(self) -> list[str]:
        path = self.dir / "calls.log"
        return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def fake_slurm(tmp_path) -> FakeSlurm:
    directory = tmp_path / "slurm-bin"
    directory.mkdir()
    return FakeSlurm(directory)


def _cluster_up() -> bool:
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15)
        nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %T"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "is UP" in ping.stdout and nodes.returncode == 0 and bool(nodes.stdout.strip())


def _ensure_by_setup(ready, what: str) -> None:
    """Run scripts/setup-slurm unless ``ready()``; fail (never skip) if it still is not."""
    if ready():
        return
    setup = subprocess.run([str(ROOT / "scripts" / "setup-slurm")], capture_output=True, text=True, timeout=900)
    if setup.returncode != 0 or not ready():
        pytest.fail(f"{what} (scripts/setup-slurm exited {setup.returncode}):\n"
                    f"{setup.stdout[-3000:]}\n{setup.stderr[-3000:]}")


@pytest.fixture(scope="session")
def slurm_cluster() -> dict[str, str]:
    """The real cluster's node name; starts it with scripts/setup-slurm when needed."""
    _ensure_by_setup(_cluster_up, "could not bring up Slurm")
    node = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True,
                          timeout=15).stdout.split()[0]
    return {"node": node, "host": socket.gethostname()}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _jwt_enabled() -> bool:
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=15).stdout
    return "auth/jwt" in config and shutil.which("slurmrestd") is not None


@pytest.fixture(scope="session")
def slurmrestd(slurm_cluster) -> dict[str, str]:
    """Debian's real slurmrestd for the one-node cluster, as a private process: rest_auth/jwt on
    127.0.0.1 (it refuses to run as root: it runs as ``nobody``, through ``setpriv``), and a token for root from
    ``scontrol token``. Brings the cluster to scripts/setup-slurm's configuration (auth/jwt,
    accounting) first when it runs an older one."""
    _ensure_by_setup(_jwt_enabled, "no slurmrestd with auth/jwt")
    token = subprocess.run(["scontrol", "token", "username=root", "lifespan=7200"], capture_output=True,
                           text=True, timeout=15, check=True).stdout.strip().removeprefix("SLURM_JWT=")
    port = _free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log_path = ARTIFACTS / f"slurmrestd-{port}.log"
    with open(log_path, "ab") as log:
        # setpriv execs slurmrestd itself (no parent left between us and it to forward signals)
        proc = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                 "slurmrestd", "-a", "rest_auth/jwt", f"127.0.0.1:{port}"],
                                env={**os.environ, "SLURM_JWT": "daemon"}, cwd="/tmp",
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"slurmrestd did not listen on 127.0.0.1:{port}:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.1)
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "user": "root", "log": str(log_path)}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
