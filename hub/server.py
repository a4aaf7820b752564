"""Run the hub under daphne: ``python -m hub.server -b 127.0.0.1 -p 8000``.

A thin wrapper over daphne's own CLI that (1) validates settings before binding, (2) makes
daphne enforce ``HUB_MAX_MESSAGE_SIZE`` (close 1009), and (3) redacts credentials from
daphne's access log, which prints HTTP query strings (``?token=...``) verbatim.
Any daphne option can be passed through.
"""

from __future__ import annotations

import os
import sys

from daphne.cli import CommandLineInterface
from daphne.server import Server


class RedactingServer(Server):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.action_logger is not None:
            from hub.logging_filters import RedactingStream

            self.action_logger.stream = RedactingStream(self.action_logger.stream)


class HubCommandLineInterface(CommandLineInterface):
    server_class = RedactingServer


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
    import django
    from django.conf import settings

    django.setup()
    args = list(sys.argv[1:] if argv is None else argv)
    size = str(settings.HUB["MAX_MESSAGE_SIZE"])
    if "--websocket-max-message-size" not in args:
        args += ["--websocket-max-message-size", size, "--websocket-max-frame-size", size]
    if not any(a.startswith("realtime_project") or ":" in a for a in args if not a.startswith("-")):
        args.append("realtime_project.asgi:application")
    HubCommandLineInterface().run(args)


if __name__ == "__main__":
    main()
