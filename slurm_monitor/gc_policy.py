"""When the long-running monitor lets Python's cyclic garbage collector walk its snapshot.

At 100,000 jobs the monitor holds millions of long-lived objects (the jobs and nodes
snapshots, their strings, the record caches). CPython's automatic full (generation 2)
collection walks all of them: measured in process at 10,000 nodes x 100,000 jobs
(``bench.slurm_poll`` with a ``gc.callbacks`` probe), 7 full collections in 9 jobs polls, up
to 0.41 s each, landing wherever an allocation burst happens to trigger one, e.g. in the
middle of delivering a poll's events: the tail of the change-to-socket latency.

``GcPolicy.after_poll`` runs when a jobs poll has delivered and saved everything. It
freezes what is alive then (``gc.freeze``: moved to the permanent generation, skipped by
every later automatic collection, so those walk only what was allocated since), and every
``full_every`` polls it first unfreezes and runs one full collection there, off the events'
path. Nothing is leaked for good: garbage cycles among frozen objects are found at the next
full collection (the snapshot's objects are freed by reference counting anyway: records
hold no cycles). This is the technique CPython documents for ``gc.freeze`` (long-lived
objects made once, kept for a long time), applied per poll.

Only the long-running monitor uses it (``service.serve``): a process running tests, or a
hub holding a monitor in process, keeps the default collector.
"""

from __future__ import annotations

import gc
import logging
import time

logger = logging.getLogger("slurm_monitor")

FULL_EVERY = 12  # jobs polls between full collections: one a minute at the default 5 s


class GcPolicy:
    def __init__(self, full_every: int = FULL_EVERY) -> None:
        self.full_every = max(1, full_every)
        self.polls = 0
        self.last_full_seconds = 0.0  # how long the last full collection took

    def after_poll(self) -> None:
        """Call when a jobs poll has delivered and saved everything."""
        self.polls += 1
        if self.polls >= self.full_every:
            self.polls = 0
            started = time.monotonic()
            gc.unfreeze()
            found = gc.collect()
            self.last_full_seconds = time.monotonic() - started
            logger.info("full garbage collection after a jobs poll: %d objects freed in %.2fs", found,
                         self.last_full_seconds)
        gc.freeze()
