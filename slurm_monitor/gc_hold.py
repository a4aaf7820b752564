"""Holding Python's cyclic garbage collector off where a pause would cost latency.

A full collection walks every live object: with 100,000 jobs in memory that is up to ~0.4 s
(measured with a ``gc.callbacks`` probe in session 6), and it lands wherever an allocation
happens to cross the threshold. Two places hold it off, and it resumes (and catches up)
right after; nothing is lost, a collection only comes later:

- ``gc_paused()``: while a big document is decoded (millions of dicts and lists, none in a
  cycle; each allocation burst would trigger a collection of the whole document).
- ``GcHold``: a jobs poll, from the moment its state listing arrives until its events are
  out, so a change's way to the subscribers never includes a full collection. A poll holds
  it for well under a second (0.3-0.5 s at 100,000 jobs); with slow detail commands, as long
  as they take (each is bounded by the command timeout).

Why not ``gc.freeze()`` after each poll (tried, session 6): it takes the snapshot out of
every collection, but cyclic garbage frozen with it stays until an unfreeze, which needs a
periodic full collection anyway; the one end-to-end run that stalled with it was never
explained. Deferring keeps the collector's own schedule and cost, only moved out of the way.

Never enables what it did not disable: a process that turned the collector off keeps it off.
"""

from __future__ import annotations

import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class GcHold:
    """``hold()`` turns the collector off (if it is on), ``release()`` back on if ``hold`` turned
    it off; both idempotent. As a context manager, leaving it releases (an error, a
    cancellation: never left off)."""

    def __init__(self) -> None:
        self.held = False

    def hold(self) -> None:
        if not self.held and gc.isenabled():
            gc.disable()
            self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            gc.enable()

    def __enter__(self) -> "GcHold":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
