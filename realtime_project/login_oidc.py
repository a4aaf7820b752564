"""The OIDC backend (mozilla-django-oidc) ``realtime_project.logins`` installs when
``HUB_OIDC_CLIENT_ID`` is set; imported only then."""

from __future__ import annotations

import logging

import jwt
import requests
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from hub.identity import set_slurm_user
from hub.socket.protocol import is_valid_username

logger = logging.getLogger("hub.logins")


class HubOIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's authorization-code backend, matching accounts by the
    ``HUB_OIDC_USERNAME_CLAIM`` claim (the library's default, e-mail, is not an identity:
    two accounts may share one, and a provider may let users edit it).

    Checks the library leaves out: the ID token's ``aud`` holds our client id, its ``iss``
    is ``HUB_OIDC_ISSUER`` when set, and the user-info ``sub`` is the ID token's ``sub``
    (OpenID Connect Core 5.3.2), so user info issued for someone else is never used."""

    def authenticate(self, request, **kwargs):
        """The library's flow; a provider that cannot be reached or answers nonsense is a
        failed login (the failure URL), never a 500."""
        try:
            return super().authenticate(request, **kwargs)
        except (requests.RequestException, ValueError, KeyError, TypeError, jwt.PyJWTError) as exc:
            logger.warning("OIDC: login failed: %s: %s", type(exc).__name__, exc)
            return None

    def retrieve_matching_jwk(self, token):
        """The library's lookup needs a ``kid``; RFC 7515 makes it optional. Without one, the
        provider's only signing key for the algorithm (several: refused)."""
        header = jwt.get_unverified_header(token)
        if "kid" in header:
            return super().retrieve_matching_jwk(token)
        response = requests.get(self.OIDC_OP_JWKS_ENDPOINT, timeout=self.get_settings("OIDC_TIMEOUT", None),
                                verify=self.get_settings("OIDC_VERIFY_SSL", True))
        response.raise_for_status()
        algorithm = self.OIDC_RP_SIGN_ALGO
        keys = [key for key in response.json().get("keys", [])
                if key.get("use", "sig") == "sig" and key.get("alg", algorithm) == algorithm]
        if len(keys) != 1 or header.get("alg") != algorithm:
            raise SuspiciousOperation("OIDC token without kid, and no single key to check it with")
        return jwt.PyJWK(keys[0], algorithm=algorithm)

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("OIDC token for another audience")
        issuer = getattr(settings, "HUB_OIDC_ISSUER", "")
        if issuer and str(payload.get("iss", "")).rstrip("/") != issuer.rstrip("/"):
            raise SuspiciousOperation("OIDC token from another issuer")
        return payload

    def get_userinfo(self, access_token, id_token, payload):
        claims = super().get_userinfo(access_token, id_token, payload)
        if not isinstance(claims, dict) or claims.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("OIDC user info is about another subject")
        return claims

    @staticmethod
    def _username(claims) -> str:
        return str(claims.get(getattr(settings, "HUB_OIDC_USERNAME_CLAIM", "preferred_username")) or "")

    def verify_claims(self, claims) -> bool:
        name = self._username(claims)
        if not is_valid_username(name):
            logger.warning("OIDC: no valid %s claim (%r): login refused",
                           getattr(settings, "HUB_OIDC_USERNAME_CLAIM", "preferred_username"), name[:200])
            return False
        return True

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(**{self.UserModel.USERNAME_FIELD: self._username(claims)})

    def describe_user_by_claims(self, claims) -> str:
        return f"username {self._username(claims)!r}"

    def create_user(self, claims):
        user = self.UserModel.objects.create_user(self._username(claims), email=claims.get("email") or "")
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        claim = getattr(settings, "HUB_OIDC_SLURM_USER_CLAIM", "")
        if claim and claims.get(claim):
            set_slurm_user(user, str(claims[claim]), source="OIDC")
        return user
