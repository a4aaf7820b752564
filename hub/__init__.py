"""The hub app, grouped by role in the order data flows (README, "What is where"):

- ``socket/``: the WebSocket side (Origin check, credentials, admission, the consumer, the
  pure protocol and session cores, application message types);
- ``engine/``: connections, subscriptions, fan-out, the backends and the socket writers;
  ``daphne/``: the only importer of daphne, autobahn and Twisted;
- ``rest/``: the HTTP side (views, input and output, permissions, ``POST /api/broadcast``,
  the read side); ``notify/``: notifications, rules, deliveries; ``ops/``: metrics, stats,
  audit, log redaction.

At the top: Django's files (``apps``, ``models``, ``admin``, ``urls``, ``routing``), the
entry point ``python -m hub.server``, and what every part uses: ``publish`` (THE publish
API), ``policies`` (THE publish rule, ``may_publish``), ``identity`` (each account's Slurm
user) and ``conf`` (the ``HUB`` settings, read at use).
"""
