"""PURE (given a decoder): a big Slurm JSON document's record list, decoded a slice at a time.

Why: a full ``squeue --json`` of 100,000 jobs is ~86 MB of text whose decoded tree (a dict per
record and per number object, a str per value) takes ~400 MB, on top of the snapshot the
monitor keeps; and once freed, the allocator's arenas stay pinned by the records built
between those objects. Decoding ~``SLICE_CHARS`` of records at a time, each slice dropped
before the next is decoded, keeps the tree under a MB whatever the queue's size (issue 13:
the monitor's peak memory), and is faster too (see ``SLICE_CHARS``).

How, without a JSON parser of our own: the record list is found by its key; the first
record's first key (every Slurm release prints a job's fields in one fixed order) marks the
candidate cuts, ``}`` ``,`` ``{"<that key>"`` with any whitespace. A cut is taken only if the
slice up to it decodes on its own as a JSON array: a cut inside a string or a nested
value cannot (the slice would end inside that string or value), so only a cut between two
top-level records is ever taken, whatever a string holds (inside a string the quotes of
``"<key>"`` would be escaped anyway). The last records are cut one at a time, and the list's
end is the first ``}`` ``]`` up to which the last one decodes (so a wrong try costs one
record). Then the rest of the document (``meta``, ``errors``, ...) must decode, with an empty
list in place of the records, and pass ``snapshot.load_document``'s checks. A document not
laid out that way (no such key, an empty list, no end found before anything was given)
is decoded whole: the same result, the old cost.
"""

from __future__ import annotations

import re
from itertools import chain
from typing import Any, Callable, Iterator

from slurm_monitor.snapshot import SnapshotError, load_document

# ~150 records of the simulator, ~30 of a real 25.11 squeue. Small on purpose: a slice's tree
# (~5x its text) then stays in the CPU's cache while its records are fingerprinted and built,
# measured at 100,000 jobs: 0.7 s a full parse against 1.2 s whole and 1.7 s in 1 MB slices.
SLICE_CHARS = 1 << 17
_END_TRIES = 64  # ``}]`` inside the last record tried before giving up on finding the list's end
Decode = Callable[[str], Any]  # raises ValueError on text that is not JSON


def iter_records(text: Any, key: str, decode: Decode, slice_chars: int = SLICE_CHARS) -> Iterator[dict[str, Any]]:
    """The ``key`` records of the document ``text``, in order; raises SnapshotError as
    ``snapshot.load_document`` would on the whole document, at the latest after the last
    record (the rest of the document, its ``errors`` included, is checked then): consume the
    iterator fully before trusting what it gave. A non-string or small ``text`` is decoded
    whole and handed to ``load_document``. (The records of a slice are handed out by
    ``chain``, in C: a generator step per record cost ~0.1 s at 100,000 jobs.)"""
    return chain.from_iterable(_slices(text, key, decode, slice_chars))


def _slices(text: Any, key: str, decode: Decode, slice_chars: int) -> Iterator[list[dict[str, Any]]]:
    """``iter_records``'s records, a checked list per slice."""
    if not isinstance(text, str) or len(text) <= slice_chars:
        yield load_document(_decoded(text, decode), key)
        return
    match = re.search(r'"' + re.escape(key) + r'"\s*:\s*\[\s*', text)
    first = _FIRST_KEY.match(text, match.end()) if match else None
    if match is None or first is None:  # not the expected layout, or an empty list
        yield load_document(_decoded(text, decode), key)
        return
    cut_at = re.compile(r"\}\s*,\s*\{\s*" + re.escape('"' + first.group(1) + '"'))
    position = first.start()
    while True:
        records, end = _cut(text, position, position + slice_chars, cut_at, decode)
        if records is None:
            break
        yield _records(records, key)
        position = end
    # The last records, one at a time (so a failed try costs one record), then the list's end.
    while True:
        records, end = _cut(text, position, position, cut_at, decode)
        if records is None:
            break
        yield _records(records, key)
        position = end
    records, bracket = _end(text, position, decode)
    if records is None:
        if position == first.start():  # nothing given yet: the old way
            yield load_document(_decoded(text, decode), key)
            return
        raise SnapshotError(f"output is not JSON: the {key!r} list does not end")
    _check_rest(text[:match.end()] + text[bracket:], key, decode)
    yield _records(records, key)


def _decoded(text: Any, decode: Decode) -> Any:
    """The whole document decoded, or ``text`` as it is: ``load_document`` names the problem."""
    if not isinstance(text, str) or not text.strip():
        return text
    try:
        return decode(text)
    except ValueError:
        return text


_FIRST_KEY = re.compile(r'\{\s*"((?:[^"\\]|\\.)+)"\s*:')
_END = re.compile(r"\}\s*\]")


def _cut(text: str, position: int, after: int, cut_at: re.Pattern[str],
         decode: Decode) -> tuple[list[Any] | None, int]:
    """The records from ``position`` (a record's ``{``) to the first cut past ``after`` that
    decodes, and the index of the next record's ``{``; (None, position) when none does."""
    for match in cut_at.finditer(text, after):
        brace = match.start() + 1
        try:
            records = decode("[" + text[position:brace] + "]")
        except ValueError:
            continue  # inside a nested value: not a record boundary
        return records, text.index("{", brace)
    return None, position


def _end(text: str, position: int, decode: Decode) -> tuple[list[Any] | None, int]:
    """The last record(s) from ``position`` and the index of the list's ``]``: the first
    ``}`` ``]`` after which the slice decodes; (None, position) after ``_END_TRIES``."""
    for tries, match in enumerate(_END.finditer(text, position)):
        if tries >= _END_TRIES:
            break
        try:
            return decode("[" + text[position:match.start() + 1] + "]"), match.end() - 1
        except ValueError:
            continue
    return None, position


def _check_rest(rest: str, key: str, decode: Decode) -> None:
    """The document without its records must be a valid one with an empty ``key`` list."""
    doc = _decoded(rest, decode)
    if load_document(doc, key):
        raise SnapshotError(f"output has a misplaced {key!r} list")


def _records(records: Any, key: str) -> list[dict[str, Any]]:
    """A slice's records, checked as ``load_document`` checks them."""
    if not isinstance(records, list) or not all(type(record) is dict for record in records):
        raise SnapshotError(f"output has no {key!r} list")
    return records
