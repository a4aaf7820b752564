"""WebSocket credentials (PROTOCOL.md §2): first found wins — ``Authorization: Bearer``,
``?token=``, the Django session cookie, then a first ``auth`` frame. A token is a DRF auth
token or a signed JWT access token (djangorestframework-simplejwt). Tokens are never logged.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from hub.policies import ANONYMOUS, Principal

NO_TOKEN = object()  # scope["hub.token"] when the handshake carried none


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


def _user_for_token_sync(token: str):
    from django.contrib.auth import get_user_model

    if token.count(".") == 2:  # JWT: header.payload.signature
        from rest_framework_simplejwt.exceptions import TokenError
        from rest_framework_simplejwt.settings import api_settings
        from rest_framework_simplejwt.tokens import AccessToken

        try:
            access = AccessToken(token)
        except TokenError:
            return None
        user_id = access.get(api_settings.USER_ID_CLAIM)
        try:
            user = get_user_model().objects.get(**{api_settings.USER_ID_FIELD: user_id})
        except (get_user_model().DoesNotExist, ValueError, TypeError):
            return None
        return user if user.is_active else None
    from rest_framework.authtoken.models import Token

    try:
        found = Token.objects.select_related("user").get(key=token)
    except (Token.DoesNotExist, ValueError):
        return None
    return found.user if found.user.is_active else None


user_for_token = database_sync_to_async(_user_for_token_sync)


def principal_for(user) -> Principal:
    if user is None or not getattr(user, "is_authenticated", False):
        return ANONYMOUS
    return Principal(username=user.get_username(), is_staff=bool(user.is_staff))


def _user_for_session_sync(session_key: str):
    from types import SimpleNamespace

    from django.contrib.auth import get_user
    from django.contrib.sessions.backends.base import SessionBase
    from importlib import import_module

    from django.conf import settings

    store: SessionBase = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(SimpleNamespace(session=store))
    return user if user.is_authenticated else None


user_for_session = database_sync_to_async(_user_for_session_sync)


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


class HubAuthMiddleware:
    """Sets ``scope["hub.token_user"]`` (a user, or None for a bad token) when the handshake
    carried a token, else ``scope["user"]`` from the session cookie when there is one.

    Why not Channels' AuthMiddlewareStack: its SessionMiddleware wraps ``send`` for every
    socket (for cookie saving, which WebSocket cannot do) and hides the server's own send
    callable, which the fan-out writes to directly (hub.transport)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            token = extract_handshake_token(scope)
            if token is not NO_TOKEN:
                scope = dict(scope, **{"hub.token_user": await user_for_token(token)})
            else:
                key = session_key_from(scope)
                if key:
                    scope = dict(scope, user=await user_for_session(key))
        return await self.inner(scope, receive, send)
