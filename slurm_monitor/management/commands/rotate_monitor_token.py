"""``manage.py rotate_monitor_token [--user NAME]``: replace the Slurm monitor's REST token.

The old token stops working at once; a running monitor (``http`` sink) gets 401 at its next
request, reads the new token from the database and goes on. The key is not printed: the
monitor reads it itself, nobody else needs it.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from slurm_monitor.account import ServiceAccountError, rotate_service_token
from slurm_monitor.conf import ConfigError, load_config


class Command(BaseCommand):
    help = "Replace the Slurm monitor service account's API token (the old one stops working)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", help="the service account (default: SLURM_MONITOR_SERVICE_USER, "
                                           "slurm-monitor)")

    def handle(self, *args, **options) -> None:
        try:
            username = options["user"] or load_config().service_user
            rotate_service_token(username)
        except (ConfigError, ServiceAccountError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"rotated the token of {username!r}; a running monitor picks up the new "
                          "one at its next request")
