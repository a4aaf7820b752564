"""``Authorization: Bearer <token>`` on REST, as on the WebSocket (PROTOCOL.md section 2):
the token is a signed JWT access token (simplejwt) or a DRF auth token. A bad one answers a
JSON 401 ``{"code": ..., "message": ...}`` with a one-line message (simplejwt's own errors
carry a nested dict that rendered as a Python repr)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed as JWTFailed

from hub.policies import Principal


def _first_message(detail) -> tuple[str, str]:
    """(message, code) from simplejwt's ``{"detail", "code", "messages"}`` detail."""
    if isinstance(detail, dict):
        return str(detail.get("detail", "invalid token")), str(detail.get("code", "authentication_failed"))
    return str(detail), getattr(detail, "code", "authentication_failed")


class BearerAuthentication(JWTAuthentication):
    keyword = b"bearer"

    def authenticate(self, request):
        header = self.get_header(request)
        parts = header.split() if header else []
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("the Authorization header must be 'Bearer <token>'",
                                                  code="bad_authorization_header")
        raw = parts[1]
        if raw.count(b".") == 2:  # header.payload.signature
            try:
                validated = self.get_validated_token(raw)
                return self.get_user(validated), validated
            except JWTFailed as exc:
                message, code = _first_message(exc.detail)
                raise exceptions.AuthenticationFailed(message, code=code) from None
        try:
            key = raw.decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        return TokenAuthentication().authenticate_credentials(key)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class BearerScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema documents BearerAuthentication."""

    target_class = "hub.rest.rest_auth.BearerAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "a JWT access token or a DRF auth token"}


# --- the broadcast fast path's credential cache ----------------------------------------------
#
# ``POST /api/broadcast`` with ``Authorization: Token|Bearer <key>`` (hub.rest.broadcast_route)
# must not read the database per request: what a key resolves to (user, username, is_staff,
# ``hub.broadcast``) is kept CACHE_SECONDS (HUB_REST_AUTH_CACHE_SECONDS, default 5) in a
# bounded per-process table. The price, documented: a deleted token, a deactivated user or a
# withdrawn permission keeps working for at most that long in other processes; in the
# process that deletes the token or saves the user, the entries go at once (signals below).
# A JWT's ``exp`` is still checked on every hit. Failures are never cached: the request goes
# to the DRF view, which answers the 401 exactly as before.

CACHE_SECONDS_DEFAULT = 5.0
CACHE_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: Any
    principal: Principal
    expires: float | None = None  # a JWT's exp (Unix seconds)


def _cache_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("HUB_REST_AUTH_CACHE_SECONDS", CACHE_SECONDS_DEFAULT)))
    except ValueError:
        return CACHE_SECONDS_DEFAULT


class IdentityCache:
    """``(scheme, key) -> Identity`` for ``ttl`` seconds, at most ``size`` entries (the oldest
    go first). ``clock`` is injectable for tests."""

    def __init__(self, ttl: float, size: int = CACHE_MAX_ENTRIES, clock=time.monotonic) -> None:
        self.ttl, self.size, self.clock = ttl, size, clock
        self._entries: dict[tuple[str, str], tuple[float, Identity]] = {}

    def get(self, scheme: str, key: str) -> Identity | None:
        found = self._entries.get((scheme, key))
        if found is None:
            return None
        until, identity = found
        if self.clock() >= until or (identity.expires is not None and time.time() >= identity.expires):
            self._entries.pop((scheme, key), None)
            return None
        return identity

    def put(self, scheme: str, key: str, identity: Identity) -> None:
        if self.ttl <= 0:
            return
        while len(self._entries) >= self.size:
            self._entries.pop(next(iter(self._entries)))
        self._entries[(scheme, key)] = (self.clock() + self.ttl, identity)

    def forget(self, *, key: str | None = None, user_id: Any = None) -> None:
        for entry in [k for k, (_, ident) in self._entries.items()
                      if (key is not None and k[1] == key) or (user_id is not None and ident.user_id == user_id)]:
            self._entries.pop(entry, None)

    def clear(self) -> None:
        self._entries.clear()


IDENTITIES = IdentityCache(_cache_seconds())


def resolve_sync(scheme: str, key: str) -> Identity | None:
    """What DRF's authentication would accept for ``Authorization: <scheme> <key>``, or None
    (let DRF answer). ``token``: a DRF token only (as TokenAuthentication); ``bearer``: a JWT
    access token (three dot-separated parts) or a DRF token (as BearerAuthentication). Sync:
    database work."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from hub.socket.auth import principal_for

    if scheme == "bearer" and key.count(".") == 2:
        from rest_framework_simplejwt.exceptions import TokenError
        from rest_framework_simplejwt.settings import api_settings
        from rest_framework_simplejwt.tokens import AccessToken

        try:
            access = AccessToken(key)  # type: ignore[arg-type]
            user = get_user_model().objects.get(**{api_settings.USER_ID_FIELD: access[api_settings.USER_ID_CLAIM]})
        except (TokenError, KeyError, ValueError, TypeError, get_user_model().DoesNotExist):
            return None
        exp = access.get("exp")
        expires = float(exp) if isinstance(exp, (int, float)) else None
    else:
        try:
            user = Token.objects.select_related("user").get(key=key).user
        except (Token.DoesNotExist, ValueError):
            return None
        expires = None
    if not user.is_active:
        return None
    return Identity(user.pk, principal_for(user), expires)


def connect_signals() -> None:
    """Forget cached identities at once when this process deletes a token or saves a user."""
    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_delete, post_save
    from rest_framework.authtoken.models import Token

    def token_deleted(sender, instance, **kwargs) -> None:
        IDENTITIES.forget(key=instance.key)

    def user_saved(sender, instance, **kwargs) -> None:
        IDENTITIES.forget(user_id=instance.pk)

    post_delete.connect(token_deleted, sender=Token, weak=False, dispatch_uid="hub.rest.rest_auth.token")
    post_save.connect(user_saved, sender=get_user_model(), weak=False, dispatch_uid="hub.rest.rest_auth.user")
    post_delete.connect(user_saved, sender=get_user_model(), weak=False, dispatch_uid="hub.rest.rest_auth.user-del")
