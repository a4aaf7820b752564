"""``python manage.py run_slurm_monitor``: poll Slurm (or a simulated cluster) and push the
changes into the hub. Thin: options -> ``slurm_monitor.service.serve``. See
``slurm_monitor.conf`` for the environment variables the options override."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from slurm_monitor.account import ServiceAccountError
from slurm_monitor.clusters import ClusterNameError, validate
from slurm_monitor.conf import (
    SINK_CHOICES,
    ConfigError,
    check_hub_url,
    check_interval,
    check_mock_size,
    check_source,
    load_config,
)
from slurm_monitor.service import RunOptions, serve


class Command(BaseCommand):
    help = "Poll Slurm and publish jobs, nodes, metrics, notifications and alerts to the hub."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--jobs-interval", type=float, help="seconds between squeue polls (5)")
        parser.add_argument("--nodes-interval", type=float, help="seconds between node polls (10)")
        parser.add_argument("--metrics-interval", type=float, help="seconds between metrics_update (15)")
        parser.add_argument("--command-timeout", type=float, help="seconds before a Slurm command is killed (20)")
        parser.add_argument("--once", action="store_true", help="poll each stream once and exit")
        parser.add_argument("--mock", action="store_true", help="use the simulated cluster")
        parser.add_argument("--fallback-mock", action="store_true",
                            help="use the simulated cluster when squeue is not installed")
        parser.add_argument("--seed", type=int, help="random seed of the simulated cluster")
        parser.add_argument("--mock-size", metavar="NODESxJOBS",
                            help="a site-scale simulated cluster, e.g. 10000x100000 (default: 8 nodes)")
        parser.add_argument("--sink", choices=SINK_CHOICES,
                            help="layer: hub.publish (needs REDIS_URL to reach daphne); "
                                 "http: the hub's REST API; auto (default): layer iff REDIS_URL")
        parser.add_argument("--source", choices=("cli", "restd"),
                            help="cli (default): squeue/sinfo/sacct; restd: slurmrestd at --restd-url")
        parser.add_argument("--restd-url", help="slurmrestd: http(s)://host:port or unix:/path "
                                                "(SLURM_MONITOR_RESTD_URL); token in SLURM_JWT or "
                                                "SLURM_MONITOR_RESTD_TOKEN_FILE")
        parser.add_argument("--hub-url", help="the hub for the http sink (HUB_URL, http://127.0.0.1:8000)")
        parser.add_argument("--cluster", metavar="NAME",
                            help="the cluster this monitor watches (default: the primary, "
                                 "SLURM_MONITOR_CLUSTER); another one publishes on jobs.NAME, nodes.NAME, "
                                 "metrics.NAME and keeps its own rows")
        parser.add_argument("--slurm-conf", metavar="PATH",
                            help="SLURM_CONF for every Slurm command this monitor runs: point it at "
                                 "another cluster's slurm.conf (cli source)")

    def handle(self, *args, **options) -> None:
        try:
            config = load_config()
            overrides: dict[str, Any] = {}  # MonitorConfig fields of several types
            for option, field in (("jobs_interval", "jobs_interval"), ("nodes_interval", "nodes_interval"),
                                  ("metrics_interval", "metrics_interval"),
                                  ("command_timeout", "command_timeout")):
                if options[option] is not None:
                    overrides[field] = check_interval("--" + option.replace("_", "-"), options[option])
            if options["sink"]:
                overrides["sink"] = options["sink"]
            if options["mock_size"]:
                overrides["mock_size"] = check_mock_size("--mock-size", options["mock_size"])
            if options["hub_url"]:
                overrides["hub_url"] = check_hub_url("--hub-url", options["hub_url"])
            if options["source"]:
                overrides["source"] = options["source"]
            if options["restd_url"]:
                overrides["restd_url"] = options["restd_url"]
            config = dataclasses.replace(config, **overrides)
            cluster = options["cluster"]
            if cluster is not None:
                try:
                    validate(cluster)
                except ClusterNameError as exc:
                    raise ConfigError(f"--cluster: {exc}") from None
            slurm_conf = options["slurm_conf"]
            if slurm_conf is not None and not os.path.isfile(slurm_conf):
                raise ConfigError(f"--slurm-conf: {slurm_conf!r} is not a file")
            if not options["mock"]:
                check_source("--source / SLURM_MONITOR_SOURCE", config.source, config.restd_url)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        run = RunOptions(config=config, once=options["once"], mock=options["mock"],
                         fallback_mock=options["fallback_mock"], seed=options["seed"],
                         cluster=cluster, slurm_conf=os.path.abspath(slurm_conf) if slurm_conf else None)
        try:
            asyncio.run(serve(run))
        except ServiceAccountError as exc:
            raise CommandError(str(exc)) from None
