"""collector: commands with timeouts, release-dependent node command, failures as CollectError."""

from __future__ import annotations

import json
import sys
import time

import pytest

from slurm_monitor.collector import (
    CollectError,
    CommandResult,
    SlurmCollector,
    nodes_command,
    parse_release,
    run_command,
)
from tests.slurm_monitor import shapes


async def test_run_command_returns_output_and_exit_code():
    result = await run_command([sys.executable, "-c", "import sys; print('hi'); sys.exit(3)"], 10)
    assert (result.returncode, result.stdout.strip()) == (3, "hi")
    assert result.seconds >= 0


async def test_run_command_kills_on_timeout():
    started = time.monotonic()
    with pytest.raises(CollectError, match="timed out after 0.3s"):
        await run_command([sys.executable, "-c", "import time; time.sleep(30)"], 0.3)
    assert time.monotonic() - started < 10


async def test_run_command_missing_binary():
    with pytest.raises(CollectError, match="cannot run"):
        await run_command(["/nonexistent/squeue", "--json"], 5)


@pytest.mark.parametrize("text, expected", [
    ("slurm 22.05.8\n", (22, 5)), ("slurm-wlm 23.11.4", (23, 11)), ("slurm 25.11.0", (25, 11)),
    ("garbage", None),
])
def test_parse_release(text, expected):
    assert parse_release(text) == expected


@pytest.mark.parametrize("release, argv", [
    ((22, 5), ["sinfo", "--json"]),
    ((23, 2), ["scontrol", "show", "nodes", "--json"]),
    ((25, 11), ["scontrol", "show", "nodes", "--json"]),
])
def test_nodes_command_by_release(release, argv):
    assert nodes_command(release) == argv


class FakeSlurm:
    """Answers like a Slurm of ``release``; ``answers`` overrides per command name."""

    def __init__(self, release: str, answers: dict | None = None) -> None:
        self.release = release
        self.calls: list[tuple[str, ...]] = []
        self.answers = answers or {}

    async def __call__(self, argv, timeout):
        self.calls.append(tuple(argv))
        name = argv[0].rsplit("/", 1)[-1]
        if name in self.answers:
            answer = self.answers[name]
            if isinstance(answer, Exception):
                raise answer
            return CommandResult(tuple(argv), *answer, 0.01)
        if argv[1:] == ["--version"]:
            return CommandResult(tuple(argv), 0, f"slurm {self.release}.1\n", "", 0.01)
        if name == "squeue":
            return CommandResult(tuple(argv), 0, json.dumps(shapes.squeue_doc(self.release)), "", 0.01)
        if name in ("sinfo", "scontrol"):
            return CommandResult(tuple(argv), 0, json.dumps(shapes.nodes_doc(self.release)), "", 0.01)
        return CommandResult(tuple(argv), 127, "", "not found", 0.01)


@pytest.mark.parametrize("release, node_argv", [
    ("22.05", ("sinfo", "--json")), ("23.02", ("scontrol", "show", "nodes", "--json")),
    ("25.11", ("scontrol", "show", "nodes", "--json")),
])
async def test_collector_uses_the_right_commands(release, node_argv):
    fake = FakeSlurm(release)
    collector = SlurmCollector(runner=fake, timeout=3)
    assert len(await collector.collect_jobs()) == 7
    assert len(await collector.collect_nodes()) == 5
    assert len(await collector.collect_nodes()) == 5
    assert fake.calls == [("squeue", "--all", "--json"), ("scontrol", "--version"), node_argv, node_argv]
    assert collector.last_run["nodes"][0] == " ".join(node_argv)


async def test_collector_bin_dir_prefixes_commands():
    fake = FakeSlurm("23.11")
    await SlurmCollector(runner=fake, bin_dir="/opt/slurm/bin").collect_jobs()
    assert fake.calls == [("/opt/slurm/bin/squeue", "--all", "--json")]


@pytest.mark.parametrize("answer, message", [
    ((1, "", "squeue: error: Unable to contact slurm controller (connect failure)"), "exited 1: squeue: error"),
    ((0, "", ""), "empty output"),
    ((0, "not json", ""), "not JSON"),
    ((0, json.dumps({"jobs": [], "errors": [{"description": "Failed while looking for jobs"}]}), ""),
     "Failed while looking for jobs"),
    (CollectError("squeue --all --json timed out after 3s"), "timed out"),
])
async def test_failed_polls_raise_collect_error(answer, message):
    collector = SlurmCollector(runner=FakeSlurm("22.05", {"squeue": answer}), timeout=3)
    with pytest.raises(CollectError, match=message):
        await collector.collect_jobs()


async def test_release_is_retried_until_known():
    fake = FakeSlurm("23.11", {"scontrol": (1, "", "scontrol: command not found")})
    collector = SlurmCollector(runner=fake)
    with pytest.raises(CollectError):
        await collector.collect_nodes()
    fake.answers.clear()
    assert len(await collector.collect_nodes()) == 5
    assert collector.release == (23, 11)


async def test_unchanged_jobs_and_nodes_come_back_as_the_same_records():
    collector = SlurmCollector(runner=FakeSlurm("24.11"))
    first_jobs, first_nodes = await collector.collect_jobs(), await collector.collect_nodes()
    again_jobs, again_nodes = await collector.collect_jobs(), await collector.collect_nodes()
    assert all(again_jobs[k] is first_jobs[k] for k in first_jobs)
    assert all(again_nodes[k] is first_nodes[k] for k in first_nodes)
    assert collector.job_parser.cache.rebuilt == 0


def test_decode_json_uses_orjson_and_leaves_bad_output_to_snapshot():
    from slurm_monitor import collector as c

    assert c.orjson is not None  # pinned in requirements.txt
    assert c.decode_json('{"jobs": []}') == {"jobs": []}
    assert c.decode_json(b'{"jobs": []}') == {"jobs": []}
    assert c.decode_json("not json") == "not json"
    assert c.decode_json("  ") == "  "
