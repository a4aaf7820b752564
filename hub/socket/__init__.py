"""The WebSocket side, in data-flow order: ``origin`` (the handshake's Origin check),
``auth`` (credentials), ``admission`` (per-process caps), ``consumers`` (the thin ASGI
consumer), ``protocol`` and ``session`` (pure: frames, per-socket state machine),
``credentials`` (re-checked while sockets live), ``handlers`` and ``chat``
(application message types).
"""
