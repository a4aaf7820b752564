"""WebSocket credentials (PROTOCOL.md §2): first found wins — ``Authorization: Bearer``,
``?token=``, the Django session cookie, then a first ``auth`` frame. A token is a DRF auth
token or a signed JWT access token (djangorestframework-simplejwt). Tokens are never logged.

Every lookup returns a ``Credential``: who the socket is (its ``Principal``, computed here,
in the sync database function, because ``has_perm`` queries the database) and what it
presented, so ``hub.socket.credentials`` can re-check it while the socket lives (PROTOCOL.md §2).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from hub.policies import Principal

NO_TOKEN = object()  # extract_handshake_token: the handshake carried none
TOKEN, JWT, SESSION = "token", "jwt", "session"  # Credential.kind


@dataclass(frozen=True, slots=True)
class Credential:
    """An authenticated socket's credential. ``key`` is the DRF token key or the session key
    (kept in memory for the re-check; never logged, never sent to other processes: they get
    ``digest``); ``expires`` is a JWT's ``exp`` (Unix seconds)."""

    user_id: Any
    principal: Principal
    kind: str
    key: str | None = None
    expires: float | None = None

    @property
    def digest(self) -> str:
        return key_digest(self.key or "")


def key_digest(key: str) -> str:
    """What crosses processes to name a token or session (``hub.socket.credentials``)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def extract_handshake_token(scope: dict[str, Any]) -> Any:
    """The token from the Authorization header or the query string, or NO_TOKEN."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text = value.decode("latin-1").strip()
            scheme, _, credential = text.partition(" ")
            if scheme.lower() in ("bearer", "token") and credential.strip():
                return credential.strip()
    query = scope.get("query_string", b"").decode("latin-1")
    if query:
        values = parse_qs(query).get("token")
        if values and values[0]:
            return values[0]
    return NO_TOKEN


def principal_for(user) -> Principal:
    """Sync only (``has_perm`` and the Slurm-user mapping query the database): call it where
    the user is loaded. ``slurm_user`` names the socket's ``user:`` channel (hub.identity)."""
    from hub.identity import slurm_user_for

    return Principal(username=user.get_username(), is_staff=bool(user.is_staff),
                     can_broadcast=bool(user.has_perm("hub.broadcast")),
                     slurm_user=slurm_user_for(user))


def _credential_for_token_sync(token: str) -> Credential | None:
    from django.contrib.auth import get_user_model

    if token.count(".") == 2:  # JWT: header.payload.signature
        from rest_framework_simplejwt.exceptions import TokenError
        from rest_framework_simplejwt.settings import api_settings
        from rest_framework_simplejwt.tokens import AccessToken

        try:
            # simplejwt annotates its encoded-token argument as a Token; it is the JWT string.
            access = AccessToken(token)  # type: ignore[arg-type]
        except TokenError:
            return None
        user_id = access.get(api_settings.USER_ID_CLAIM)
        try:
            user = get_user_model().objects.get(**{api_settings.USER_ID_FIELD: user_id})
        except (get_user_model().DoesNotExist, ValueError, TypeError):
            return None
        if not user.is_active:
            return None
        exp = access.get("exp")
        return Credential(user.pk, principal_for(user), JWT,
                          expires=float(exp) if isinstance(exp, (int, float)) else None)
    from rest_framework.authtoken.models import Token

    try:
        found = Token.objects.select_related("user").get(key=token)
    except (Token.DoesNotExist, ValueError):
        return None
    if not found.user.is_active:
        return None
    return Credential(found.user.pk, principal_for(found.user), TOKEN, key=found.key)


credential_for_token = database_sync_to_async(_credential_for_token_sync)


def session_user(session_key: str):
    """The session's user as Django's own ``get_user`` sees it (session alive, auth hash
    still valid, i.e. password unchanged; backend's ``is_active`` rule), or None. Sync."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import get_user
    from django.http import HttpRequest

    request = HttpRequest()  # get_user reads (and on a stale hash flushes) only its session
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(request)
    return user if user.is_authenticated else None


def _credential_for_session_sync(session_key: str) -> Credential | None:
    user = session_user(session_key)
    if user is None:
        return None
    return Credential(user.pk, principal_for(user), SESSION, key=session_key)


credential_for_session = database_sync_to_async(_credential_for_session_sync)


def session_key_from(scope: dict[str, Any]) -> str | None:
    from http.cookies import SimpleCookie

    from django.conf import settings

    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            cookie = SimpleCookie()
            try:
                cookie.load(value.decode("latin-1"))
            except Exception:
                return None
            morsel = cookie.get(settings.SESSION_COOKIE_NAME)
            return morsel.value if morsel else None
    return None


NO_CREDENTIAL = object()  # handshake_credential: no token, no logged-in session cookie


async def handshake_credential(scope) -> Any:
    """What the handshake presented: a ``Credential``; None for a bad token (the consumer
    closes 4001); ``NO_CREDENTIAL`` when it carried no token and no live session cookie (the
    socket may still send ``auth``). Read once, before accept (``HubConsumer.run``); the
    re-checks while the socket lives need only the returned ``Credential``.

    Why not Channels' AuthMiddlewareStack: its SessionMiddleware wraps ``send`` for every
    socket (for cookie saving, which WebSocket cannot do) and hides the server's own send
    callable, which the fan-out writes to directly (hub.engine.transport)."""
    token = extract_handshake_token(scope)
    if token is not NO_TOKEN:
        return await credential_for_token(token)
    key = session_key_from(scope)
    credential = await credential_for_session(key) if key else None
    return NO_CREDENTIAL if credential is None else credential
