"""The monitor's settings, read from the environment at start-up (never at import).

| variable | default | meaning |
|---|---|---|
| ``SLURM_MONITOR_JOBS_INTERVAL`` | 5 | seconds between ``squeue`` polls |
| ``SLURM_MONITOR_NODES_INTERVAL`` | 10 | seconds between node polls |
| ``SLURM_MONITOR_METRICS_INTERVAL`` | 15 | seconds between ``metrics_update`` events |
| ``SLURM_MONITOR_STATE_TIER`` | true | tiered jobs polls (``tiers``); false: a full ``squeue --json`` every poll |
| ``SLURM_MONITOR_FULL_EVERY`` | 12 | jobs polls per full ``squeue --json`` cycle when tiered |
| ``SLURM_MONITOR_COMMAND_TIMEOUT`` | 20 | seconds a Slurm command may take before it is killed |
| ``SLURM_MONITOR_SINK`` | auto | ``layer`` (hub.publish; needs REDIS_URL to reach daphne), ``http`` (REST), ``auto`` |
| ``HUB_URL`` | http://127.0.0.1:8000 | the hub the ``http`` sink posts to |
| ``SLURM_MONITOR_SERVICE_USER`` | slurm-monitor | the account the ``http`` sink authenticates as |
| ``SLURM_MONITOR_BIN_DIR`` | (PATH) | directory holding squeue/sinfo/scontrol |
| ``SLURM_MONITOR_HISTORY_DAYS`` | 14 | days a finished job stays findable after ``squeue`` forgot it |
| ``SLURM_MONITOR_SACCT_BATCH`` | 100 | ended jobs asked of ``sacct`` per history step (one call; 0: never ask) |
| ``SLURM_MONITOR_HISTORY_INTERVAL`` | 30 | seconds between history steps (purge, ``sacct``) |
| ``SLURM_MONITOR_GAP_HOURS`` | 24 | after a restart, the last hours of the downtime whose unseen ended
  jobs are reported (``gap``; cut to the history's days) |
| ``SLURM_MONITOR_GAP_JOBS`` | 2000 | at most this many of them (the latest ended) |
| ``SLURM_MONITOR_TIME_LIMIT_WARN_FRACTION`` | 0.8 | tell a job's owner once when it has run this
  fraction of its time limit (``job_time_limit``; 0: never; below 1) |
| ``SLURM_MONITOR_SOURCE`` | cli | ``cli`` (squeue, sinfo/scontrol, sacct) or ``restd`` (slurmrestd) |
| ``SLURM_MONITOR_RESTD_URL`` | | slurmrestd's ``http(s)://host:port`` or ``unix:/path`` (``--source restd``) |
| ``SLURM_JWT`` / ``SLURM_MONITOR_RESTD_TOKEN_FILE`` | | slurmrestd token (``scontrol token``), or a
  file holding it, re-read per request; neither: rest_auth/local |
| ``SLURM_MONITOR_RESTD_USER`` | (the monitor's user) | the user the token belongs to |
| ``SLURM_MONITOR_INTEREST_INTERVAL`` | 10 | at most this often (s; 0: every jobs poll), one
  ``squeue --start`` and one ``sstat`` for the jobs open job pages watch (``interest``) |
| ``SLURM_MONITOR_LOW_USAGE_FRACTION`` | 0.25 | a finished job that used under this share of its
  CPU time or memory gets its owner a ``job_low_usage`` note (0: never) |
| ``SLURM_MONITOR_MOCK_SIZE`` | (small) | ``--mock``'s cluster as NODESxJOBS, e.g. 10000x100000
  (``mock_scale``); unset: the eight-node demo |
| ``SLURM_MONITOR_MOCK_TRACE`` | | benchmarks: with ``--mock``, a file the simulated cluster's
  commands, churn and the poll ends are appended to (``mock_trace``) |

Command-line options of ``run_slurm_monitor`` override these. A bad value raises
``ConfigError`` naming the variable. Which cluster a monitor watches is no variable here: the
primary's name is the Django setting ``SLURM_MONITOR_CLUSTER`` (default ``default``, validated
at start-up); ``--cluster NAME`` watches another one and ``--slurm-conf PATH`` sets SLURM_CONF
for its Slurm commands (README "Several clusters", ``slurm_monitor.clusters``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

from realtime_project.env import env_number

SINK_CHOICES = ("auto", "layer", "http")


class ConfigError(ValueError):
    """A setting is invalid; the message names the variable or option."""


@dataclass(frozen=True)
class MonitorConfig:
    jobs_interval: float = 5.0
    nodes_interval: float = 10.0
    metrics_interval: float = 15.0
    command_timeout: float = 20.0
    sink: str = "auto"
    hub_url: str = "http://127.0.0.1:8000"
    service_user: str = "slurm-monitor"
    bin_dir: str = ""
    mock_size: tuple[int, int] | None = None  # (nodes, jobs) of the site-scale simulator
    history_days: float = 14.0
    sacct_batch: int = 100
    history_interval: float = 30.0
    gap_hours: float = 24.0
    gap_jobs: int = 2000
    time_limit_warn_fraction: float = 0.8  # 0: no time-limit reminders
    source: str = "cli"  # source.SOURCE_CHOICES
    restd_url: str = ""
    interest_interval: float = 10.0
    low_usage_fraction: float = 0.25
    state_tier: bool = True
    full_every: int = 12
    mock_trace: str = ""  # a file path: trace the simulated cluster (benchmarks)


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    return env_number(name, default, minimum, env=env, error=ConfigError)


def check_interval(name: str, value: float, minimum: float = 0.05) -> float:
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum:g} seconds, got {value:g}")
    return value


def check_sink(name: str, value: str) -> str:
    if value not in SINK_CHOICES:
        raise ConfigError(f"{name} must be one of {', '.join(SINK_CHOICES)}, got {value!r}")
    return value


def check_source(name: str, value: str, restd_url: str) -> str:
    """``cli`` or ``restd`` (which needs a slurmrestd URL, checked by ``restd.parse_url``)."""
    from slurm_monitor.restd import RestdConfigError, parse_url
    from slurm_monitor.source import SOURCE_CHOICES

    if value not in SOURCE_CHOICES:
        raise ConfigError(f"{name} must be one of {', '.join(SOURCE_CHOICES)}, got {value!r}")
    if value == "restd":
        if not restd_url:
            raise ConfigError("the restd source needs --restd-url (SLURM_MONITOR_RESTD_URL)")
        try:
            parse_url(restd_url)
        except RestdConfigError as exc:
            raise ConfigError(f"--restd-url / SLURM_MONITOR_RESTD_URL: {exc}") from None
    return value


def check_hub_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an http(s) URL such as http://127.0.0.1:8000, got {value!r}")
    return value.rstrip("/")


def check_bool(name: str, value: str) -> bool:
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


MAX_MOCK_NODES, MAX_MOCK_JOBS = 100_000, 2_000_000


def check_mock_size(name: str, value: str) -> tuple[int, int]:
    """"10000x100000" -> (10000, 100000)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
    if not match:
        raise ConfigError(f"{name} must be NODESxJOBS such as 10000x100000, got {value!r}")
    nodes, jobs = int(match.group(1)), int(match.group(2))
    if not 1 <= nodes <= MAX_MOCK_NODES or not 0 <= jobs <= MAX_MOCK_JOBS:
        raise ConfigError(f"{name} must have 1-{MAX_MOCK_NODES} nodes and 0-{MAX_MOCK_JOBS} jobs, got {value!r}")
    return nodes, jobs


def check_fraction(name: str, value: float) -> float:
    """A share such as 0.8 (time-limit reminders) or 0.25 (low-usage notes); 0 turns it off.
    1 or more would mean "always", which neither setting can mean."""
    if not 0 <= value < 1:
        raise ConfigError(f"{name} must be 0 (off) or a fraction below 1 such as 0.8, got {value:g}")
    return value


def load_config(env: Mapping[str, str] | None = None) -> MonitorConfig:
    env = os.environ if env is None else env
    user = env.get("SLURM_MONITOR_SERVICE_USER", "").strip() or "slurm-monitor"
    if len(user) > 150:
        raise ConfigError("SLURM_MONITOR_SERVICE_USER must be at most 150 characters")
    bin_dir = env.get("SLURM_MONITOR_BIN_DIR", "").strip()
    if bin_dir and not os.path.isdir(bin_dir):
        raise ConfigError(f"SLURM_MONITOR_BIN_DIR is not a directory: {bin_dir!r}")
    return MonitorConfig(
        jobs_interval=_number(env, "SLURM_MONITOR_JOBS_INTERVAL", 5.0, 0.05),
        nodes_interval=_number(env, "SLURM_MONITOR_NODES_INTERVAL", 10.0, 0.05),
        metrics_interval=_number(env, "SLURM_MONITOR_METRICS_INTERVAL", 15.0, 0.05),
        command_timeout=_number(env, "SLURM_MONITOR_COMMAND_TIMEOUT", 20.0, 0.1),
        sink=check_sink("SLURM_MONITOR_SINK", env.get("SLURM_MONITOR_SINK", "").strip() or "auto"),
        hub_url=check_hub_url("HUB_URL", env.get("HUB_URL", "").strip() or "http://127.0.0.1:8000"),
        service_user=user,
        bin_dir=bin_dir,
        history_days=_number(env, "SLURM_MONITOR_HISTORY_DAYS", 14.0, 0.0),
        sacct_batch=env_number("SLURM_MONITOR_SACCT_BATCH", 100, 0, cast=int, env=env, error=ConfigError),
        history_interval=_number(env, "SLURM_MONITOR_HISTORY_INTERVAL", 30.0, 0.05),
        gap_hours=_number(env, "SLURM_MONITOR_GAP_HOURS", 24.0, 0.0),
        gap_jobs=env_number("SLURM_MONITOR_GAP_JOBS", 2000, 0, cast=int, env=env, error=ConfigError),
        time_limit_warn_fraction=check_fraction(
            "SLURM_MONITOR_TIME_LIMIT_WARN_FRACTION",
            _number(env, "SLURM_MONITOR_TIME_LIMIT_WARN_FRACTION", 0.8, 0.0)),
        source=env.get("SLURM_MONITOR_SOURCE", "").strip() or "cli",
        restd_url=env.get("SLURM_MONITOR_RESTD_URL", "").strip(),
        interest_interval=_number(env, "SLURM_MONITOR_INTEREST_INTERVAL", 10.0, 0.0),
        low_usage_fraction=check_fraction("SLURM_MONITOR_LOW_USAGE_FRACTION",
                                          _number(env, "SLURM_MONITOR_LOW_USAGE_FRACTION", 0.25, 0.0)),
        state_tier=check_bool("SLURM_MONITOR_STATE_TIER", env.get("SLURM_MONITOR_STATE_TIER", "true")),
        full_every=env_number("SLURM_MONITOR_FULL_EVERY", 12, 1, cast=int, env=env, error=ConfigError),
        mock_trace=env.get("SLURM_MONITOR_MOCK_TRACE", "").strip(),
        mock_size=check_mock_size("SLURM_MONITOR_MOCK_SIZE", env["SLURM_MONITOR_MOCK_SIZE"])
        if env.get("SLURM_MONITOR_MOCK_SIZE", "").strip() else None,
    )
