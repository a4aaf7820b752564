"""What the monitor asks of a Slurm source: the CLI (``collector.SlurmCollector``, the default)
or slurmrestd (``restd.RestdCollector``). Both hand the same data_parser JSON to the same
parsers (``snapshot``, ``sacct``), so their records are equal."""

from __future__ import annotations

from collections import Counter
from typing import Protocol, Sequence

from slurm_monitor.sacct import Accounting
from slurm_monitor.snapshot import Job, Node

SOURCE_CHOICES = ("cli", "restd")


class Source(Protocol):
    """Each collect returns a full snapshot or raises ``collector.CollectError``.

    ``commands_run`` counts the requests made, by name; ``last_run`` maps a stream ("jobs",
    "nodes", "sacct") to (the command or request, seconds) of its last call."""

    commands_run: Counter[str]
    last_run: dict[str, tuple[str, float]]

    async def slurm_release(self) -> tuple[int, int]: ...

    async def collect_jobs(self) -> dict[str, Job]: ...

    async def collect_nodes(self) -> dict[str, Node]: ...

    async def collect_accounting(self, job_ids: Sequence[str]) -> dict[str, Accounting]: ...

    async def collect_ended(self, start: float, end: float) -> dict[str, Accounting]:
        """Every job that ended between ``start`` and ``end`` (Unix seconds): one query."""
        ...
