"""slurmrestd as the monitor's source (``run_slurm_monitor --source restd --restd-url URL``).

Same public surface as ``collector.SlurmCollector`` (``source.Source``): ``collect_jobs``,
``collect_nodes``, ``collect_accounting``, ``slurm_release``. slurmrestd's answers are made by
the same code as the CLI's ``--json`` (22.05: the openapi/v0.0.38 plugin for ``squeue``/``sinfo
--json`` and ``/slurm/v0.0.38/*``; 23.02 on: data_parser/v0.0.XX for both), so they go to the
same parsers (``snapshot``, ``sacct``) and a job's record is the same through either source.

- URL: ``http(s)://host:port[/prefix]`` or ``unix:/path/to/socket``.
- Credentials: with a token (``SLURM_JWT``, or a file re-read on every request so a renewed
  token is picked up), the headers ``X-SLURM-USER-NAME``/``X-SLURM-USER-TOKEN`` (rest_auth/jwt;
  tokens from ``scontrol token``). Without one, none: rest_auth/local on a unix socket, where
  slurmrestd takes the caller's uid (which must be its own).
- Versions: detected once, at the first call, from slurmrestd's OpenAPI document (``/openapi/v3``,
  or ``/openapi.json`` on later releases): the highest ``/slurm/v0.0.XX/jobs`` and
  ``/slurmdb/v0.0.XX/jobs`` it serves among v0.0.36 (22.05's oldest) to v0.0.45. The paths are
  taken from that document as written. What differs between versions is in the records, which
  ``snapshot`` reads for every release; the envelope (``meta``, ``errors``, ``jobs``/``nodes``)
  is the same.
- Accounting: ``/slurmdb/v0.0.XX/jobs?step=1,2`` (the ``step`` filter, "comma delimited list
  of job steps to match", is ``sacct -j``; commas percent-encoded: 22.05's query parser
  refuses them bare). After a restart, once, the jobs that ended while the monitor was down:
  ``/slurmdb/v0.0.XX/jobs?start_time=&end_time=&state=`` (``sacct -S -E -s``; times in the
  local form ``parse_time`` reads, as the CLI's: slurmrestd is expected in the monitor's time
  zone).

HTTP/1.1 over asyncio streams, one connection per request (``Connection: close``): no client
library is a requirement of the monitor, and a poll is a handful of requests. A request that
fails (refused, timed out, non-200, broken JSON, an ``errors`` list) raises ``CollectError``.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import ssl
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar
from urllib.parse import quote, urlsplit

from slurm_monitor.collector import (
    OUTPUT_LIMIT_BYTES,
    CollectError,
    decode_json,
    fast_fingerprint,
    orjson,
    parse_release,
)
from slurm_monitor.cache import JobParser, NodeParser, fingerprint
from slurm_monitor.gc_hold import gc_paused
from slurm_monitor.sacct import ENDED_STATES, SACCT_MAX_IDS, Accounting, parse_sacct, slurm_time
from slurm_monitor.snapshot import Job, Node, SnapshotError, slurm_release

T = TypeVar("T")
OLDEST, NEWEST = 36, 45  # data_parser / openapi plugin versions v0.0.36 .. v0.0.45
OPENAPI_PATHS = ("/openapi/v3", "/openapi.json", "/openapi")
# The release each plugin version first shipped in, when ``ping`` gives none.
RELEASE_OF_VERSION = {36: (20, 11), 37: (21, 8), 38: (22, 5), 39: (23, 2), 40: (23, 11), 41: (24, 5),
                      42: (24, 11), 43: (25, 5), 44: (25, 11), 45: (26, 5)}


class RestdConfigError(ValueError):
    """The slurmrestd URL or credentials are unusable; the message says which."""


@dataclass(frozen=True)
class Target:
    host: str = ""
    port: int = 0
    socket_path: str = ""  # a unix socket, else TCP to host:port
    tls: bool = False
    prefix: str = ""  # a path prefix (slurmrestd behind a proxy)

    @property
    def label(self) -> str:
        return f"unix:{self.socket_path}" if self.socket_path else f"{self.host}:{self.port}"


def parse_url(url: str) -> Target:
    """"unix:/run/slurmrestd.sock", "http://127.0.0.1:6820", "https://rest.example.edu/slurm"."""
    url = url.strip()
    if url.startswith("unix:"):
        path = url[len("unix:"):]
        path = path[2:] if path.startswith("//") else path
        if not path.startswith("/"):
            raise RestdConfigError(f"a unix socket URL needs an absolute path (unix:/path), got {url!r}")
        return Target(socket_path=path)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RestdConfigError(f"slurmrestd URL must be http(s)://host:port or unix:/path, got {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise RestdConfigError(f"bad port in slurmrestd URL {url!r}") from None
    return Target(host=parts.hostname, port=port, tls=parts.scheme == "https",
                  prefix=parts.path.rstrip("/"))


@dataclass(frozen=True)
class Credentials:
    """A JWT (``token``, or ``token_file`` read on each request) for ``user``; neither: none
    sent (rest_auth/local)."""

    user: str = ""
    token: str = ""
    token_file: str = ""

    def headers(self) -> dict[str, str]:
        token = self.token
        if self.token_file:
            try:
                token = Path(self.token_file).read_text().strip()
            except OSError as exc:
                raise CollectError(f"cannot read the slurmrestd token file: {exc}") from None
        token = token.removeprefix("SLURM_JWT=")  # as ``scontrol token`` prints it
        if not token:
            return {}
        return {"X-SLURM-USER-NAME": self.user or getpass.getuser(), "X-SLURM-USER-TOKEN": token}


def credentials_from_env(env: dict[str, str] | None = None) -> Credentials:
    """``SLURM_JWT`` (Slurm's own variable) or ``SLURM_MONITOR_RESTD_TOKEN_FILE``, for
    ``SLURM_MONITOR_RESTD_USER`` (default: the user running the monitor)."""
    env = dict(os.environ) if env is None else env
    jwt = env.get("SLURM_JWT", "").strip()
    return Credentials(user=env.get("SLURM_MONITOR_RESTD_USER", "").strip(),
                       token="" if jwt == "daemon" else jwt,  # "daemon" is slurmrestd's own switch
                       token_file=env.get("SLURM_MONITOR_RESTD_TOKEN_FILE", "").strip())


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return b"".join(chunks)
            total += size
            if total > OUTPUT_LIMIT_BYTES:
                raise CollectError("slurmrestd's answer is too large")
            chunks.append(await reader.readexactly(size))
            await reader.readline()
    if "content-length" in headers:
        length = int(headers["content-length"])
        if length > OUTPUT_LIMIT_BYTES:
            raise CollectError("slurmrestd's answer is too large")
        return await reader.readexactly(length)
    return await reader.read(OUTPUT_LIMIT_BYTES)


async def http_get(target: Target, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One GET; (status, body). Raises OSError/ValueError/IncompleteReadError on a broken exchange."""
    if target.socket_path:
        reader, writer = await asyncio.open_unix_connection(target.socket_path, limit=2**20)
        host = "localhost"
    else:
        context = ssl.create_default_context() if target.tls else None
        reader, writer = await asyncio.open_connection(target.host, target.port, ssl=context, limit=2**20)
        host = f"{target.host}:{target.port}"
    try:
        lines = [f"GET {target.prefix}{path} HTTP/1.1", f"Host: {host}", "Accept: application/json",
                 "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status_line = (await reader.readline()).decode("latin-1")
        match = re.match(r"HTTP/1\.[01] (\d{3})", status_line)
        if not match:
            raise ValueError(f"not an HTTP answer: {status_line.strip()[:80]!r}")
        response_headers: dict[str, str] = {}
        while (line := (await reader.readline()).decode("latin-1").strip()):
            name, _, value = line.partition(":")
            response_headers[name.strip().lower()] = value.strip()
        return int(match.group(1)), await _read_body(reader, response_headers)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


def _error_detail(body: bytes) -> str:
    doc = decode_json(body)
    if isinstance(doc, dict) and isinstance(doc.get("errors"), list) and doc["errors"]:
        first = doc["errors"][0]
        if isinstance(first, dict):
            return str(first.get("description") or first.get("error") or first)
    text = body.decode(errors="replace").strip()
    return text.splitlines()[0][:200] if text else "no body"


def pick_versions(spec: Any) -> tuple[str, str, str | None, str | None]:
    """An OpenAPI document -> (jobs path, nodes path, ping path, slurmdb jobs path) of the
    highest version served (ping and slurmdb may be absent). Raises CollectError without jobs."""
    paths = spec.get("paths") if isinstance(spec, dict) else None
    if not isinstance(paths, dict):
        raise CollectError("slurmrestd's OpenAPI document lists no paths")
    found: dict[tuple[str, str], dict[int, str]] = {}
    for path in paths:
        match = re.fullmatch(r"/(slurm|slurmdb)/v0\.0\.(\d+)/(jobs|nodes|ping)/?", path)
        if match and OLDEST <= int(match.group(2)) <= NEWEST:
            found.setdefault((match.group(1), match.group(3)), {})[int(match.group(2))] = path
    jobs = found.get(("slurm", "jobs"), {})
    common = sorted(set(jobs) & set(found.get(("slurm", "nodes"), {})))
    if not common:
        raise CollectError(f"slurmrestd serves no /slurm/v0.0.{OLDEST}-{NEWEST} jobs and nodes")
    version = common[-1]
    dbjobs = found.get(("slurmdb", "jobs"), {})
    return (jobs[version], found[("slurm", "nodes")][version],
            found.get(("slurm", "ping"), {}).get(version),
            dbjobs[max(dbjobs)] if dbjobs else None)


class RestdCollector:
    """Collects through slurmrestd; ``versions`` holds the detected paths once known."""

    def __init__(self, url: str, credentials: Credentials = Credentials(), timeout: float = 20.0) -> None:
        self.target = parse_url(url)
        self.credentials = credentials
        self.timeout = timeout
        self.release: tuple[int, int] | None = None
        self.paths: tuple[str, str, str | None, str | None] | None = None
        self.commands_run: Counter[str] = Counter()
        self.last_run: dict[str, tuple[str, float]] = {}
        print_ = fast_fingerprint if orjson is not None else fingerprint
        self.job_parser = JobParser(print_)
        self.node_parser = NodeParser(print_)

    async def _get(self, path: str, stream: str = "") -> tuple[Any, float]:
        """GET ``path``: (decoded JSON, seconds). Raises CollectError."""
        self.commands_run[f"GET {path.split('?')[0]}"] += 1
        started = time.monotonic()
        where = f"slurmrestd {self.target.label} GET {path}"
        try:
            status, body = await asyncio.wait_for(http_get(self.target, path, self.credentials.headers()),
                                                  self.timeout)
        except asyncio.TimeoutError:
            raise CollectError(f"{where} timed out after {self.timeout:g}s", time.monotonic() - started) from None
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            raise CollectError(f"{where} failed: {exc}", time.monotonic() - started) from None
        seconds = time.monotonic() - started
        if stream:
            self.last_run[stream] = (f"GET {path}", seconds)
        if status != 200:
            hint = " (credentials refused: token expired or not accepted?)" if status in (401, 403) else ""
            raise CollectError(f"{where} answered HTTP {status}{hint}: {_error_detail(body)}", seconds)
        with gc_paused():
            return decode_json(body), seconds

    async def _paths(self) -> tuple[str, str, str | None, str | None]:
        if self.paths is None:
            last: CollectError | None = None
            for candidate in OPENAPI_PATHS:
                try:
                    spec, _ = await self._get(candidate)
                except CollectError as exc:
                    last = exc
                    continue
                self.paths = pick_versions(spec)
                break
            else:
                raise last or CollectError("slurmrestd serves no OpenAPI document")
        return self.paths

    async def slurm_release(self) -> tuple[int, int]:
        if self.release is None:
            jobs_path, _, ping_path, _ = await self._paths()
            release = None
            if ping_path:
                doc, _ = await self._get(ping_path)
                text = slurm_release(doc) if isinstance(doc, dict) else None
                release = parse_release(text) if text else None
            if release is None:
                version = re.search(r"v0\.0\.(\d+)", jobs_path)
                release = RELEASE_OF_VERSION.get(int(version.group(1))) if version else None
            if release is None:
                raise CollectError("cannot tell slurmrestd's Slurm release")
            self.release = release
        return self.release

    async def _collect(self, path: str, stream: str, parse: Callable[[Any], T]) -> T:
        doc, seconds = await self._get(path, stream)
        try:
            with gc_paused():
                return parse(doc)
        except SnapshotError as exc:
            raise CollectError(f"slurmrestd {path}: {exc}", seconds) from None

    async def collect_jobs(self) -> dict[str, Job]:
        return await self._collect((await self._paths())[0], "jobs", self.job_parser.parse)

    async def collect_nodes(self) -> dict[str, Node]:
        return await self._collect((await self._paths())[1], "nodes", self.node_parser.parse)

    async def collect_accounting(self, job_ids: Sequence[str]) -> dict[str, Accounting]:
        """What slurmdbd knows of these jobs (one request); ids it does not know are absent."""
        path = await self._slurmdb_jobs()
        ids = ",".join(str(i) for i in list(job_ids)[:SACCT_MAX_IDS])
        return await self._collect(f"{path}?step={quote(ids, safe='')}", "sacct", parse_sacct)

    async def collect_ended(self, start: float, end: float) -> dict[str, Accounting]:
        """Every job that ended between ``start`` and ``end`` (Unix seconds): one request."""
        path = await self._slurmdb_jobs()
        query = "&".join(f"{key}={quote(value, safe='')}" for key, value in
                         (("start_time", slurm_time(start)), ("end_time", slurm_time(end)),
                          ("state", ENDED_STATES)))
        return await self._collect(f"{path}?{query}", "sacct", parse_sacct)

    async def _slurmdb_jobs(self) -> str:
        path = (await self._paths())[3]
        if path is None:
            raise CollectError("slurmrestd serves no /slurmdb/ jobs (no accounting through it)")
        return path
