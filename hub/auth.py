"""WebSocket credentials (PROTOCOL.md §2): first found wins — ``Authorization: Bearer``,
``?token=``, the Django session cookie, then a first ``auth`` frame. A token is a DRF auth
token or a signed JWT access token (djangorestframework-simplejwt). Tokens are never logged.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
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


class HubTokenMiddleware:
    """Resolves a handshake token (header or query) into ``scope["hub.token_user"]``:
    a user, None for a bad token, or absent when no token was sent."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            token = extract_handshake_token(scope)
            if token is not NO_TOKEN:
                scope = dict(scope, **{"hub.token_user": await user_for_token(token)})
        return await self.inner(scope, receive, send)


def HubAuthMiddleware(inner):
    """Session cookie (Channels' AuthMiddlewareStack) plus handshake tokens."""
    return AuthMiddlewareStack(HubTokenMiddleware(inner))
