"""PURE: parse a poll's records, rebuilding only those whose fields changed since the last poll.

On a big queue most jobs are the same from one poll to the next (the issue's site: 1 % of
100,000). ``RecordCache`` keeps, per record key (job id, node name), a fingerprint of the raw
fields the parser reads (``snapshot.JOB_FIELDS`` / ``NODE_FIELDS``) and the record built from
them; a record whose fingerprint is unchanged is reused as the very same object, so
``diff_jobs`` skips it with an identity test. Fields the monitor does not read (a pending job's
``priority``, ``last_sched_evaluation``, ...) change every poll and would defeat a whole-record
comparison; they are not part of the fingerprint.

The fingerprint (injectable: the collector passes a faster one built on orjson, which this
pure module may not import) is ``hash()`` of the fields' values frozen into tuples: an int per record, not
a copy of the raw values (those would keep ~1 KB per job alive). Two different values of the
same job's fields hashing equal is a 64-bit collision (~1e-19 per changed record); accepted.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Generic, Hashable, Iterable, Mapping, TypeVar

from slurm_monitor.snapshot import (
    JOB_FIELDS,
    NODE_FIELDS,
    Job,
    Node,
    SnapshotError,
    load_document,
    parse_job,
    parse_node,
)

T = TypeVar("T")
_CONTAINERS = frozenset({dict, list})


def _freeze(value: Any) -> Hashable:
    if type(value) is dict:
        return tuple([(k, _freeze(v)) for k, v in value.items()])
    if type(value) is list:
        return tuple([_freeze(v) for v in value])
    return value


def fingerprint(record: Mapping[str, Any], fields: tuple[str, ...]) -> int:
    """A hash of ``record``'s values for ``fields`` (missing fields count as None)."""
    values = tuple(map(record.get, fields))
    try:
        return hash(values)  # 22.05: plain values only
    except TypeError:  # number objects, lists: freeze them
        return hash(tuple([_freeze(v) if type(v) in _CONTAINERS else v for v in values]))


Fingerprint = Callable[[Mapping[str, Any], tuple[str, ...]], int]


class RecordCache(Generic[T]):
    """``build(records)`` -> parsed records in order; ``rebuilt`` counts the last call's parses.

    Records absent from a poll are forgotten, except from a ``partial`` one (the detail of a
    few jobs, ``tiers``): it updates those entries and keeps the rest. A parse error leaves
    the cache as it was."""

    def __init__(self, parse: Callable[[Mapping[str, Any]], T], fields: tuple[str, ...],
                 key: Callable[[Mapping[str, Any]], Any], fingerprint: Fingerprint = fingerprint) -> None:
        self.parse = parse
        self.fingerprint = fingerprint
        self.fields = fields
        self.key = key
        self.rebuilt = 0
        self._entries: dict[Hashable, tuple[int, T]] = {}

    def build(self, records: Iterable[Mapping[str, Any]], partial: bool = False) -> list[T]:
        entries, out, rebuilt = self._entries, [], 0
        fresh: dict[Hashable, tuple[int, T]] = dict(entries) if partial else {}
        parse, fields, key_of, fingerprint_of = self.parse, self.fields, self.key, self.fingerprint
        for record in records:
            print_ = fingerprint_of(record, fields)
            key = key_of(record)
            if type(key) in _CONTAINERS:
                key = _freeze(key)
            hit = entries.get(key)
            if hit is not None and hit[0] == print_:
                item = hit[1]
            else:
                item = parse(record)
                rebuilt += 1
            fresh[key] = (print_, item)
            out.append(item)
        self._entries, self.rebuilt = fresh, rebuilt
        return out


# Job fields whose values repeat across a queue (a few states, partitions, users, reasons):
# decoded, each record's is a str of its own (~55 bytes); shared, 100,000 jobs hold one each.
SHARED_FIELDS = ("user", "partition", "state", "name", "reason", "account", "qos")


def parse_shared_job(record: Mapping[str, Any]) -> Job:
    """``parse_job``, the values of ``SHARED_FIELDS`` interned: equal values are one object."""
    job = parse_job(record)
    for name in SHARED_FIELDS:
        value = getattr(job, name)
        if type(value) is str:
            object.__setattr__(job, name, sys.intern(value))  # frozen: as Job.__post_init__ does
    return job


class JobParser:
    """``parse(raw)``: ``snapshot.parse_jobs`` with a memory of the previous poll."""

    def __init__(self, fingerprint: Fingerprint = fingerprint) -> None:
        self.cache: RecordCache[Job] = RecordCache(parse_shared_job, JOB_FIELDS, lambda r: r.get("job_id"),
                                                   fingerprint)

    def parse(self, raw: str | bytes | Mapping[str, Any], partial: bool = False) -> dict[str, Job]:
        return self.parse_records(load_document(raw, "jobs"), partial)

    def parse_records(self, records: Iterable[Mapping[str, Any]], partial: bool = False) -> dict[str, Job]:
        """The same from the job records themselves (``slices.iter_records`` yields them)."""
        return {job.job_id: job for job in self.cache.build(records, partial)}


class NodeParser:
    """``parse(raw)``: ``snapshot.parse_nodes`` with a memory of the previous poll."""

    def __init__(self, fingerprint: Fingerprint = fingerprint) -> None:
        self.cache: RecordCache[Node] = RecordCache(
            parse_node, NODE_FIELDS, lambda r: r.get("name") or r.get("hostname"), fingerprint)

    def parse(self, raw: str | bytes | Mapping[str, Any]) -> dict[str, Node]:
        records = load_document(raw, "nodes")
        if not records:
            raise SnapshotError("output lists no nodes")
        return {node.name: node for node in self.cache.build(records)}
