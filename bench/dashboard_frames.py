"""Frame times of the dashboard in Chromium on a site-scale simulated cluster while about
1,000 job events a second arrive (issue 14). A benchmark, not a test: it prints a JSON
summary and appends nothing anywhere; docs/benchmarks.md records the runs.

    .venv/bin/python -m bench.dashboard_frames --mock-size 2000x50000 --rate 1000 --seconds 20

What it does, all on 127.0.0.1 with private state (a temporary SQLite file):
1. migrates the database, creates a viewer and a ``hub.broadcast`` account;
2. starts daphne (``python -m hub.server``) and ``run_slurm_monitor --mock --mock-size`` (http
   sink, jobs polled every second: the simulator's churn publishes job events);
3. waits until the queue is saved, opens the dashboard in Debian's chromium (Playwright),
   signs in and waits for the jobs table;
4. tops the simulator's events up to ``--rate`` per second with ``job_state_changed`` events
   for queued jobs (``POST /api/broadcast`` lists of 100), for ``--seconds``;
5. meanwhile the page records every animation-frame interval and long task, and counts the
   publications it receives. Frame intervals include idle frames (16.7 ms at 60 Hz).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PASSWORD = "bench-" + secrets.token_hex(8)

RECORDER = """
window.__frames = []; window.__long = []; window.__events = 0;
(() => {
  let last = performance.now();
  const tick = (t) => { window.__frames.push(t - last); last = t; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  try {
    new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__long.push(e.duration); })
      .observe({ type: "longtask", buffered: true });
  } catch (_) { /* no longtask support */ }
})();
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, token: str, body=None):
    request = urllib.request.Request(url, method="GET" if body is None else "POST",
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mock-size", default="2000x50000", help="NODESxJOBS of the simulated cluster")
    parser.add_argument("--rate", type=int, default=1000, help="job events a second to reach (with the simulator's)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to measure (at most 120)")
    parser.add_argument("--profile", action="store_true", help="also print the page's top functions by self time")
    args = parser.parse_args()
    seconds = min(args.seconds, 120.0)

    workdir = Path(tempfile.mkdtemp(prefix="dashboard-frames-"))
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="realtime_project.settings", PYTHONUNBUFFERED="1",
               SQLITE_PATH=str(workdir / "db.sqlite3"),
               DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(64),
               HUB_API_RATE_LIMIT="100000/min", HUB_API_BROADCASTER_RATE_LIMIT="1000000/min")
    env.pop("REDIS_URL", None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    setup = ("from django.contrib.auth import get_user_model as g; from rest_framework.authtoken.models import Token;"
             f"g().objects.create_user('viewer', password='{PASSWORD}');"
             f"r = g().objects.create_superuser('root', 'root@example.org', '{PASSWORD}');"
             "print(Token.objects.create(user=r).key)")
    token = subprocess.run([*manage, "shell", "-c", setup], cwd=ROOT, env=env, check=True,
                           capture_output=True, text=True).stdout.strip().splitlines()[-1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    logs = open(workdir / "processes.log", "ab")
    hub = subprocess.Popen([sys.executable, "-m", "hub.server", "-b", "127.0.0.1", "-p", str(port)],
                           cwd=ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT)
    monitor = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/api/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        monitor = subprocess.Popen(
            [*manage, "run_slurm_monitor", "--mock", "--mock-size", args.mock_size, "--jobs-interval", "1",
             "--nodes-interval", "5", "--metrics-interval", "5", "--sink", "http", "--hub-url", base],
            cwd=ROOT, env=env, stdout=logs, stderr=subprocess.STDOUT)
        wanted = int(args.mock_size.split("x")[1]) * 0.9
        t0 = time.monotonic()
        while True:
            try:
                if call(f"{base}/api/cluster/jobs?limit=1", token)["count"] >= wanted:
                    break
            except OSError:  # 503 while the first save of a large queue holds SQLite's lock
                pass
            if time.monotonic() - t0 > 300 or monitor.poll() is not None:
                raise RuntimeError(f"the monitor did not save the queue (see {workdir}/processes.log)")
            time.sleep(1)
        ids = [r["job_id"] for r in call(f"{base}/api/cluster/jobs?limit=5000&state=RUNNING", token)["results"]]
        print(json.dumps(measure(base, token, ids, args.rate, seconds, args.profile) | {
            "mock_size": args.mock_size, "rate_asked": args.rate, "seconds": seconds}, indent=2))
    finally:
        for proc in (monitor, hub):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        logs.close()


def top_functions(profile: dict, n: int = 15) -> list[str]:
    """Self time per function of a CDP CPU profile, largest first."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    self_ms: dict[str, float] = {}
    deltas = profile.get("timeDeltas", [])
    for sample, delta in zip(profile.get("samples", []), deltas):
        frame = nodes[sample]["callFrame"]
        key = f'{frame["functionName"] or "(anonymous)"} {frame["url"].rsplit("/", 1)[-1]}:{frame["lineNumber"] + 1}'
        self_ms[key] = self_ms.get(key, 0.0) + delta / 1000
    return [f"{ms:8.0f} ms  {key}" for key, ms in sorted(self_ms.items(), key=lambda kv: -kv[1])[:n]]


def measure(base: str, token: str, ids: list[str], rate: int, seconds: float, profile: bool = False) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
        page.set_default_timeout(120_000)
        started = time.monotonic()
        page.goto(base + "/")
        page.fill("#id_username", "viewer")
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector('#connection[data-state="connected"]')
        page.wait_for_function("window.dashboardJobs && window.dashboardJobs.size > 1000")
        page.wait_for_function("document.querySelectorAll('#jobs-body tr[data-job-id]').length > 5")
        first_paint = time.monotonic() - started
        # The remaining pages of jobs load (not measured): wait until the page holds the queue.
        total = call(f"{base}/api/cluster/jobs?limit=1", token)["count"]
        page.wait_for_function(f"window.dashboardJobs.size >= {int(total * 0.98)}")
        page.wait_for_timeout(2000)
        page.evaluate(RECORDER)
        page.evaluate("() => { window.__resets = []; window.dashboardHub.on('publication', () => { window.__events += 1; });"
                      " window.dashboardHub.on('reset', (r) => window.__resets.push(r)); }")
        version_before = page.evaluate("window.dashboardJobs.version")
        stop = threading.Event()
        sent = [0]

        def publisher() -> None:
            # Lists of 100 job_state_changed events, paced to `rate` a second overall.
            period = 100 / max(1, rate)
            n = 0
            next_at = time.monotonic()
            while not stop.is_set():
                batch = []
                for _ in range(100):
                    job_id = ids[n % len(ids)]
                    n += 1
                    batch.append({"channel": "jobs", "message": {"type": "job_state_changed", "data": {
                        "job_id": job_id, "state": "RUNNING" if n % 2 else "COMPLETING", "previous_state": "RUNNING",
                        "reason": None, "state_flags": []}}})
                call(f"{base}/api/broadcast", token, batch)
                sent[0] += len(batch)
                next_at += period
                time.sleep(max(0.0, next_at - time.monotonic()))

        cdp = page.context.new_cdp_session(page) if profile else None
        if cdp:
            cdp.send("Profiler.enable")
            cdp.send("Profiler.start")
        thread = threading.Thread(target=publisher, daemon=True)
        if rate > 0:
            thread.start()
        page.wait_for_timeout(seconds * 1000)
        hot = top_functions(cdp.send("Profiler.stop")["profile"]) if cdp else []
        stop.set()
        if rate > 0:
            thread.join(30)
        frames = page.evaluate("window.__frames")
        long_tasks = page.evaluate("window.__long")
        received = page.evaluate("window.__events")
        rows_in_dom = page.evaluate("document.querySelectorAll('#jobs-body tr').length")
        jobs_held = page.evaluate("window.dashboardJobs.size")
        changes = page.evaluate("window.dashboardJobs.version") - version_before
        sockets = page.evaluate("window.dashboardHub.connectedCount")
        resets = page.evaluate("window.__resets")
        browser.close()
    return {
        "first_paint_s": round(first_paint, 2), "jobs_held": jobs_held, "rows_in_dom": rows_in_dom,
        "events_received_per_s": round(received / seconds), "events_published_by_bench": sent[0],
        "job_changes_applied_per_s": round(changes / seconds), "socket_connections": sockets, "resets": resets,
        "frames": len(frames), "frame_ms_p50": percentile(frames, 0.50), "frame_ms_p95": percentile(frames, 0.95),
        "frame_ms_p99": percentile(frames, 0.99), "frame_ms_max": round(max(frames), 1) if frames else 0,
        "frames_over_50ms": sum(1 for f in frames if f > 50), "long_tasks": len(long_tasks),
        "long_task_ms_total": round(sum(long_tasks)),
        **({"profile_self_time": hot} if hot else {}),
    }


if __name__ == "__main__":
    main()
