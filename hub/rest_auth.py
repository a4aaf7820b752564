"""``Authorization: Bearer <token>`` on REST, as on the WebSocket (PROTOCOL.md section 2):
the token is a signed JWT access token (simplejwt) or a DRF auth token. A bad one answers a
JSON 401 ``{"code": ..., "message": ...}`` with a one-line message (simplejwt's own errors
carry a nested dict that rendered as a Python repr)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed as JWTFailed


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

    target_class = "hub.rest_auth.BearerAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "a JWT access token or a DRF auth token"}
