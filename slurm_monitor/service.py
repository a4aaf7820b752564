"""Start-up wiring for ``run_slurm_monitor``: pick the data source and the sink, then run.

Source: real Slurm commands, or the simulated cluster (``--mock``). ``--fallback-mock`` is for
demos (``scripts/run``): the simulated cluster when ``squeue`` is not installed or Slurm does not
answer at start-up; once running, a real cluster's outages are reported, never papered over.

Several clusters: one monitor per cluster (``cluster``, None for the primary; see
slurm_monitor.clusters). ``slurm_conf`` points this monitor's Slurm commands at another
cluster's controller (SLURM_CONF in the environment of every command it runs). Each ``--mock``
run is its own simulated cluster.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
from dataclasses import dataclass

from slurm_monitor.cluster_scope import primary_name
from slurm_monitor.collector import CollectError, SlurmCollector, run_command
from slurm_monitor.conf import MonitorConfig
from slurm_monitor.interest import InterestConfig
from slurm_monitor.loop import install_stop_signals
from slurm_monitor.monitor import History, Intervals, Monitor
from slurm_monitor.reminders import Reminders, sent_keys
from slurm_monitor.sinks import build_sink
from slurm_monitor.source import Source

logger = logging.getLogger("slurm_monitor")


@dataclass(frozen=True)
class RunOptions:
    config: MonitorConfig
    once: bool = False
    mock: bool = False
    fallback_mock: bool = False
    seed: int | None = None
    cluster: str | None = None  # None: the primary (settings.SLURM_MONITOR_CLUSTER)
    slurm_conf: str | None = None  # SLURM_CONF for every Slurm command (cli source)


def slurm_installed(bin_dir: str = "") -> bool:
    if bin_dir:
        return os.access(os.path.join(bin_dir, "squeue"), os.X_OK)
    return shutil.which("squeue") is not None


def mock_collector(options: RunOptions) -> tuple[SlurmCollector, str]:
    from slurm_monitor.mock import build_mock_cluster

    cluster = build_mock_cluster(options.seed, options.config.mock_size)
    runner = cluster.run
    if options.config.mock_trace:  # benchmarks only (bench/slurm_e2e.py)
        from slurm_monitor.mock_trace import Trace

        runner = Trace.open(options.config.mock_trace).attach(cluster)
        logger.info("tracing the simulated cluster into %s", options.config.mock_trace)
    return SlurmCollector(runner=runner, timeout=options.config.command_timeout,
                          state_tier=options.config.state_tier, sdiag=True), "mock"


async def build_collector(options: RunOptions) -> tuple[Source, str]:
    """(collector, source label): the simulated cluster, slurmrestd or the CLI."""
    config = options.config
    if options.mock:
        return mock_collector(options)
    if config.source == "restd":
        from slurm_monitor.restd import RestdCollector, credentials_from_env

        logger.info("source: slurmrestd at %s", config.restd_url)
        return RestdCollector(config.restd_url, credentials_from_env(), config.command_timeout), "slurmrestd"
    if options.fallback_mock and not slurm_installed(config.bin_dir):
        logger.info("no squeue found: using the simulated cluster")
        return mock_collector(options)
    runner = functools.partial(run_command, env={"SLURM_CONF": options.slurm_conf}) if options.slurm_conf \
        else run_command
    collector = SlurmCollector(runner=runner, timeout=config.command_timeout, bin_dir=config.bin_dir,
                               state_tier=config.state_tier, sdiag=True)
    if options.fallback_mock:
        try:
            await collector.collect_jobs()
        except CollectError as exc:
            logger.warning("Slurm does not answer (%s): using the simulated cluster", exc)
            return mock_collector(options)
    return collector, "slurm"


async def serve(options: RunOptions) -> None:
    """Run until SIGTERM/SIGINT (or one round with ``once``)."""
    config = options.config
    collector, source = await build_collector(options)
    sink = await build_sink(config.sink, config.hub_url, config.service_user)
    if sink.name == "http":
        logger.info("publishing through the hub's REST API at %s as %s", config.hub_url, config.service_user)
    else:
        logger.info("publishing through the channel layer (hub.publish)")
    monitor = Monitor(collector, sink, Intervals(config.jobs_interval, config.nodes_interval,
                                                 config.metrics_interval), source=source,
                      history=History(days=config.history_days, interval=config.history_interval,
                                      sacct_batch=config.sacct_batch, gap_hours=config.gap_hours,
                                      gap_jobs=config.gap_jobs), full_every=config.full_every,
                      reminders=Reminders(config.time_limit_warn_fraction, already_sent=functools.partial(
                          sent_keys, cluster=options.cluster or primary_name())),
                      interest=InterestConfig(config.interest_interval, config.low_usage_fraction),
                      cluster=options.cluster)
    logger.info("cluster %s (%s)", monitor.scope.name,
                "the primary" if monitor.scope.column == "" else f"channels {monitor.scope.channel('jobs')}, ...")
    if options.once:
        await monitor.run_once()
        logger.info("one round done: %s", dict(monitor.stats))
        return
    stop = asyncio.Event()
    install_stop_signals(stop)
    await monitor.run(stop)
