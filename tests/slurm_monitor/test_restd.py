"""The slurmrestd source against a stub slurmrestd: a real HTTP server (asyncio, on a unix
socket or 127.0.0.1) serving, in slurmrestd's envelope, the same fixtures the CLI's tests read
(releases.py, one per data_parser version, and fixtures/). Only the versions that cannot run
here are stubbed; Debian's real slurmrestd 22.05 is in test_e2e_restd.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command

from slurm_monitor.cache import JobParser, NodeParser
from slurm_monitor.collector import CollectError
from slurm_monitor.restd import Credentials, RestdCollector, parse_url, pick_versions
from slurm_monitor.sacct import parse_sacct, slurm_time
from tests.slurm_monitor import releases, shapes

FIXTURES = Path(__file__).parent / "fixtures"
SACCT_2205 = json.loads((FIXTURES / "sacct-22.05-busy-completed.json").read_text())


def spec_for(*versions: int, slurmdb: bool = True) -> dict:
    paths = {}
    for v in versions:
        for name in ("jobs", "nodes", "ping"):
            paths[f"/slurm/v0.0.{v}/{name}"] = {}
        if slurmdb:
            paths[f"/slurmdb/v0.0.{v}/jobs"] = {}
    return {"openapi": "3.0.2", "paths": paths}


class StubRestd:
    """Answers GET ``routes[path]`` (a document, or (status, body, headers)); records requests."""

    def __init__(self, routes: dict) -> None:
        self.routes = routes
        self.requests: list[tuple[str, dict[str, str]]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = (await reader.readline()).decode().split()
        headers = {}
        while (line := (await reader.readline()).decode().strip()):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.requests.append((request[1], headers))
        answer = self.routes.get(request[1], (404, b"Not found", {}))
        status, body, extra = answer if isinstance(answer, tuple) else (200, json.dumps(answer).encode(), {})
        head = [f"HTTP/1.1 {status} X", "Connection: Close", "Content-Type: application/json"]
        if extra.get("chunked"):
            head.append("Transfer-Encoding: chunked")
            body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:7], body[7:]) if part) + b"0\r\n\r\n"
        else:
            head.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await writer.drain()
        writer.close()


@pytest.fixture
async def stub(tmp_path):
    servers = []

    async def start(routes: dict, unix: bool = True) -> tuple[StubRestd, str]:
        restd = StubRestd(routes)
        if unix:
            path = str(tmp_path / "restd.sock")
            servers.append(await asyncio.start_unix_server(restd.handle, path))
            return restd, f"unix:{path}"
        server = await asyncio.start_server(restd.handle, "127.0.0.1", 0)
        servers.append(server)
        return restd, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("version", releases.VERSIONS)
async def test_each_version_gives_the_cli_records(stub, version):
    number = int(version.rsplit(".", 1)[1])
    release = releases.RELEASE_OF[version]
    cli_jobs = releases.squeue_doc(version)
    cli_nodes = shapes.nodes_doc(release[:5])
    _, url = await stub({"/openapi/v3": spec_for(36, 37, number) if number > 37 else spec_for(number),
                         f"/slurm/v0.0.{number}/jobs": cli_jobs, f"/slurm/v0.0.{number}/nodes": cli_nodes,
                         f"/slurm/v0.0.{number}/ping": {"meta": cli_jobs["meta"], "errors": [], "pings": []}})
    source = RestdCollector(url)
    assert await source.collect_jobs() == JobParser().parse(cli_jobs)
    assert await source.collect_nodes() == NodeParser().parse(cli_nodes)
    assert await source.slurm_release() == tuple(int(x) for x in release.split(".")[:2])
    assert source.last_run["jobs"][0] == f"GET /slurm/v0.0.{number}/jobs"


def test_the_highest_version_served_is_chosen_with_its_own_paths():
    spec = spec_for(36, 37, 38)
    spec["paths"]["/slurm/v0.0.41/jobs/"] = spec["paths"]["/slurm/v0.0.41/nodes/"] = {}  # 24.05 style
    spec["paths"]["/slurm/v0.0.46/jobs"] = spec["paths"]["/slurm/v0.0.46/nodes"] = {}  # unknown: ignored
    assert pick_versions(spec) == ("/slurm/v0.0.41/jobs/", "/slurm/v0.0.41/nodes/", None, "/slurmdb/v0.0.38/jobs")
    with pytest.raises(CollectError, match="serves no"):
        pick_versions({"paths": {"/slurmdb/v0.0.38/jobs": {}}})


async def test_accounting_asks_slurmdb_for_the_ids_once(stub):
    restd, url = await stub({"/openapi/v3": spec_for(38), "/slurmdb/v0.0.38/jobs?step=11%2C12": SACCT_2205})
    found = await RestdCollector(url).collect_accounting(["11", "12"])
    assert found == parse_sacct(SACCT_2205)
    assert [path for path, _ in restd.requests] == ["/openapi/v3", "/slurmdb/v0.0.38/jobs?step=11%2C12"]


async def test_the_gap_is_one_slurmdb_query_for_the_window_and_the_ended_states(stub):
    # checked by hand against Debian's slurmrestd 22.05 here: it filters by end time in the window
    start, end = 1796310000, 1796313600
    query = (f"start_time={quote(slurm_time(start), safe='')}&end_time={quote(slurm_time(end), safe='')}"
             "&state=BOOT_FAIL%2CCANCELLED%2CCOMPLETED%2CDEADLINE%2CFAILED%2CNODE_FAIL%2COUT_OF_MEMORY%2CPREEMPTED"
             "%2CTIMEOUT")
    restd, url = await stub({"/openapi/v3": spec_for(38), f"/slurmdb/v0.0.38/jobs?{query}": SACCT_2205})
    assert await RestdCollector(url).collect_ended(start, end) == parse_sacct(SACCT_2205)
    assert [path for path, _ in restd.requests] == ["/openapi/v3", f"/slurmdb/v0.0.38/jobs?{query}"]


def test_22_05_cpu_time_is_on_the_steps():
    # Real sacct --json of a 3 s busy job (Debian 22.05.8): the job's own time.total is 0.
    acct = parse_sacct(SACCT_2205)["11"]
    assert acct.total_cpu_seconds == pytest.approx(2.227432)
    assert acct.max_rss_mb is not None and acct.max_rss_mb > 80


async def test_a_token_is_sent_and_a_token_file_is_reread(stub, tmp_path):
    restd, url = await stub({"/openapi/v3": spec_for(38), "/slurm/v0.0.38/jobs": releases.squeue_doc("v0.0.38")},
                            unix=False)
    token_file = tmp_path / "token"
    token_file.write_text("SLURM_JWT=first\n")
    source = RestdCollector(url, Credentials(user="monitor", token_file=str(token_file)))
    await source.collect_jobs()
    token_file.write_text("second")
    await source.collect_jobs()
    sent = [(h.get("x-slurm-user-name"), h.get("x-slurm-user-token")) for _, h in restd.requests]
    assert sent == [("monitor", "first"), ("monitor", "first"), ("monitor", "second")]
    await RestdCollector(url).collect_jobs()  # no token: none sent (rest_auth/local)
    assert "x-slurm-user-token" not in restd.requests[-1][1]


async def test_refusals_and_broken_answers_are_collect_errors(stub):
    errors = {"meta": {}, "errors": [{"error": "Unable to contact slurmctld", "error_number": 1}], "jobs": []}
    _, url = await stub({"/openapi/v3": spec_for(38), "/slurm/v0.0.38/jobs": (401, b"Authentication failure", {}),
                         "/slurm/v0.0.38/nodes": (500, json.dumps(errors).encode(), {})})
    source = RestdCollector(url)
    with pytest.raises(CollectError, match="HTTP 401 .*credentials.*Authentication failure"):
        await source.collect_jobs()
    with pytest.raises(CollectError, match="HTTP 500: Unable to contact slurmctld"):
        await source.collect_nodes()
    _, url = await stub({"/openapi/v3": spec_for(38), "/slurm/v0.0.38/jobs": errors})
    with pytest.raises(CollectError, match="Unable to contact slurmctld"):  # 200 with errors: not "no jobs"
        await RestdCollector(url).collect_jobs()
    with pytest.raises(CollectError, match="failed"):
        await RestdCollector("unix:/nonexistent/restd.sock").collect_jobs()


async def test_a_chunked_answer_is_read_whole(stub):
    body = json.dumps(releases.squeue_doc("v0.0.40")).encode()
    _, url = await stub({"/openapi/v3": spec_for(40), "/slurm/v0.0.40/jobs": (200, body, {"chunked": True})})
    assert await RestdCollector(url).collect_jobs() == JobParser().parse(json.loads(body))


def test_urls():
    assert parse_url("unix:/run/slurmrestd.sock").socket_path == "/run/slurmrestd.sock"
    assert parse_url("unix:///run/x.sock").socket_path == "/run/x.sock"
    target = parse_url("https://rest.example.edu/slurm/")
    assert (target.host, target.port, target.tls, target.prefix) == ("rest.example.edu", 443, True, "/slurm")
    for bad in ("ftp://x", "unix:relative", "http://"):
        with pytest.raises(ValueError):
            parse_url(bad)


@pytest.mark.django_db
def test_the_command_refuses_restd_without_a_url(monkeypatch):
    monkeypatch.delenv("SLURM_MONITOR_RESTD_URL", raising=False)
    with pytest.raises(CommandError, match="needs --restd-url"):
        call_command("run_slurm_monitor", "--source", "restd", "--once")
    with pytest.raises(CommandError, match="RESTD_URL: .*http"):
        call_command("run_slurm_monitor", "--source", "restd", "--restd-url", "ftp://x", "--once")


def test_nothing_found_is_an_empty_answer_not_an_error():
    # Real 22.05 sacct --json -j <an id accounting does not know yet>: exit 0 and this error.
    nothing = {"meta": SACCT_2205["meta"], "jobs": [],
               "errors": [{"description": "Nothing found", "error_number": 9003,
                           "error": "Nothing found with query", "source": "slurmdb_jobs_get"}]}
    assert parse_sacct(json.dumps(nothing)) == {}
    with pytest.raises(ValueError, match="Unable to contact"):
        parse_sacct({**nothing, "errors": [*nothing["errors"], {"error": "Unable to contact slurmdbd"}]})
