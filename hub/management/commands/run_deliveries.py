"""``manage.py run_deliveries``: send pending notification e-mails and webhooks
(``hub.notify.deliveries``), with retries and backoff. Run one (or more: rows are claimed) beside
the hub, e.g. as a systemd unit (docs/deployment.md). ``--once`` sends what is due and exits."""

from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from hub.notify.deliveries import deliver_pending


class Command(BaseCommand):
    help = "Send pending notification e-mails and webhooks, retrying with backoff."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="send what is due, then exit")
        parser.add_argument("--interval", type=float, default=2.0,
                            help="seconds between looks for due deliveries (default 2)")

    def handle(self, *args, once: bool = False, interval: float = 2.0, **options):
        stop = threading.Event()
        if not once:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
        while True:
            close_old_connections()
            counts = deliver_pending()
            if any(counts.values()):
                self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
            if once or stop.wait(max(interval, 0.1)):
                return
