"""The lean ASGI route for ``POST /api/broadcast``: integration speed (issue 12).

Why not the DRF view alone: under daphne a sync view costs a thread hop per request, and an
async Django view costs more (Django runs each of the seven middlewares' hooks through
``sync_to_async``); the DRF view also read the token from the database, validated through
the serializer, encoded the message twice and wrote the audit row before answering. Here,
for a request that carries ``Authorization: Token <key>`` or ``Bearer <key>``:

1. the credential resolves through ``hub.rest.rest_auth.IDENTITIES`` (cached a few seconds; a
   miss costs one thread hop to the database, as DRF would);
2. the body is read, decoded and checked exactly as ``hub.rest.parsers.HubJSONParser`` does
   (depth, lone surrogates), then validated and encoded once (``hub.rest.broadcasting.quick_items``);
3. the publish rule, the size limit and the rate limit are applied as the view does;
4. the items are published in order and audited (queued: ``hub.ops.audit``), and the answer is
   the view's, byte for byte in shape.

Anything this route is not sure of (no such credential, a session cookie, another content
type, a body that is too large, invalid, refused or throttled) is handed to Django unchanged
(the body replayed): the DRF view then gives the exact answer it always gave. The
rate token is taken only once this route is sure to answer, so nothing is counted twice.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from channels.db import database_sync_to_async
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from hub.ops import audit
from hub.rest import broadcasting, rest_auth
from hub.conf import get_policies
from hub.rest.parsers import MAX_DEPTH, deeper_than, find_surrogate

logger = logging.getLogger(__name__)

PATHS = frozenset({"/api/broadcast", "/api/broadcast/"})
_SCHEMES = {b"token": "token", b"bearer": "bearer"}
_DEFAULT_HEADERS = [(b"content-type", b"application/json"), (b"vary", b"Accept"),
                    (b"allow", b"POST, OPTIONS"), (b"x-frame-options", b"DENY"),
                    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin")]
_resolve = database_sync_to_async(rest_auth.resolve_sync)


class _Handover(Exception):
    """Let Django answer this request."""


class BroadcastRoute:
    """ASGI middleware in front of Django's HTTP application (realtime_project.asgi)."""

    def __init__(self, app) -> None:
        self.app = app
        self._hosts: dict[bytes, bool] = {}
        rest_auth.connect_signals()

    async def __call__(self, scope, receive, send) -> None:
        audit.start_writer()  # rows are written off the request path from the first request on
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in PATHS:
            return await self.app(scope, receive, send)
        body, more = b"", None  # None: nothing read yet
        try:
            scheme, key = self._credential(scope)
            body, more = await _read_body(receive)
            if more:
                raise _Handover
            identity = rest_auth.IDENTITIES.get(scheme, key)
            if identity is None:
                identity = await _resolve(scheme, key)
                if identity is None:
                    raise _Handover
                rest_auth.IDENTITIES.put(scheme, key, identity)
            status, answer = await self._serve(scope, identity, body)
        except _Gone:
            return None
        except _Handover:
            return await self.app(scope, receive if more is None else _replay(body, more, receive), send)
        # orjson: the same bytes as json.dumps(separators=(",", ":"), ensure_ascii=False)
        # for this answer (names, offsets, booleans, messages; no floats), ~10x cheaper
        payload = orjson.dumps(answer)
        await send({"type": "http.response.start", "status": status,
                    "headers": [*_DEFAULT_HEADERS, (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    def _credential(self, scope) -> tuple[str, str]:
        authorization = host = content_type = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:
                    raise _Handover  # Django would join repeated headers: its business
                authorization = value
            elif name == b"host":
                host = value
            elif name == b"content-type":
                content_type = value
        if authorization is None or not self._host_allowed(host):
            raise _Handover
        if content_type is None or content_type.split(b";")[0].strip().lower() != b"application/json" \
                or b"charset" in content_type.lower() and b"utf-8" not in content_type.lower():
            raise _Handover
        parts = authorization.split()
        if len(parts) != 2 or parts[0].lower() not in _SCHEMES:
            raise _Handover
        try:
            return _SCHEMES[parts[0].lower()], parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise _Handover from None

    def _host_allowed(self, host: bytes | None) -> bool:
        """Django's ALLOWED_HOSTS check (CommonMiddleware would answer 400 otherwise)."""
        if host is None:
            return False
        known = self._hosts.get(host)
        if known is None:
            domain, _port = split_domain_port(host.decode("latin-1"))
            allowed = settings.ALLOWED_HOSTS
            if settings.DEBUG and not allowed:
                allowed = [".localhost", "127.0.0.1", "[::1]"]
            known = bool(domain) and validate_host(domain, allowed)
            if len(self._hosts) < 1000:
                self._hosts[host] = known
        return known

    async def _serve(self, scope, identity: rest_auth.Identity, body: bytes) -> tuple[int, Any]:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise _Handover from None
        if (text.count("[") + text.count("{") > MAX_DEPTH and deeper_than(text, MAX_DEPTH)):
            raise _Handover
        try:
            data = _decode(text)
        except ValueError:
            raise _Handover from None
        if "\\u" in text and find_surrogate(data) is not None:  # only an escape makes one
            raise _Handover
        items = broadcasting.quick_items(data)
        if items is None:
            raise _Handover
        many = isinstance(data, list)
        principal = identity.principal
        hub: dict[str, Any] = settings.HUB
        if broadcasting.first_refusal(principal, items, get_policies(), hub["REQUIRE_AUTH"],
                                      hub["MAX_MESSAGE_SIZE"], many) is not None:
            raise _Handover
        if broadcasting.take_token(identity.user_id, principal.can_broadcast) is not None:
            raise _Handover  # the view answers the 429 (it counts nothing more)
        return await broadcasting.publish(principal.username or "", items, many)


def _refuse(name: str) -> Any:
    raise ValueError(name)


_decode = json.JSONDecoder(parse_constant=_refuse).decode  # built once, not per request


async def _read_body(receive) -> tuple[bytes, bool]:
    """(what was read, whether more remains): reading stops past Django's upload limit
    (DATA_UPLOAD_MAX_MEMORY_SIZE: Django answers the 413) or when the client goes away."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Gone
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more = bool(message.get("more_body", False))
        if not more or (limit is not None and size > limit):
            return b"".join(chunks), more


class _Gone(Exception):
    """The client disconnected before its body arrived: nothing to answer."""


def _replay(body: bytes, more: bool, receive):
    """A ``receive`` that gives Django the part of the body already read, then the rest."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


def wrap(app):
    """``realtime_project.asgi``: ``"http": wrap(django_asgi_app)``."""
    return BroadcastRoute(app)
