"""Secrets and deployment settings read from the environment (used by the settings module).

Contracts:

- There is no built-in key. ``secret_key(env, debug)`` returns ``DJANGO_SECRET_KEY`` when it
  is strong, raises ImproperlyConfigured naming the variable when it is unset or weak, and
  only with ``debug`` on tolerates that: unset gives a random key for this process, weak is
  used as given (``manage.py check --deploy`` still flags both, see realtime_project.checks).
  The old built-in development key is public, so it is refused even in debug.
- ``jwt_settings(env, secret_key)`` is the ``SIMPLE_JWT`` dict. HS256 (default) signs with
  ``HUB_JWT_SIGNING_KEY`` or, when unset, a key derived from the secret key by HMAC (never a
  constant, never the secret key itself, so a leaked JWT key does not give away sessions).
  RS256/ES256 verify with an issuer's public key (``HUB_JWT_VERIFYING_KEY``, PEM text or a
  file path); the hub then signs only when given the private key as ``HUB_JWT_SIGNING_KEY``.

Only the standard library and Django's ImproperlyConfigured: the settings module imports this
before Django is set up.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Mapping

from django.core.exceptions import ImproperlyConfigured

# Published in this repository's history: anyone can sign with it.
KNOWN_PUBLIC_KEYS = frozenset({
    "dev-only-insecure-key-set-DJANGO_SECRET_KEY-in-production",
})
# Django's own thresholds (django.core.checks.security.base, security.W009).
MIN_LENGTH = 50
MIN_UNIQUE = 5
INSECURE_PREFIX = "django-insecure-"

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
MIN_JWT_HMAC_KEY = 32  # RFC 7518 §3.2: at least the hash size (256 bits for HS256)


def secret_key_problem(key: str | None) -> str | None:
    """Why ``key`` must not sign anything, or None when it is fit for production."""
    if not key:
        return "is not set"
    if key in KNOWN_PUBLIC_KEYS:
        return "is the old built-in development key, which is public"
    if key.startswith(INSECURE_PREFIX):
        return f"starts with {INSECURE_PREFIX!r} (a startproject placeholder)"
    if len(key) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    if len(set(key)) < MIN_UNIQUE:
        return f"has fewer than {MIN_UNIQUE} different characters"
    return None


def secret_key(env: Mapping[str, str], debug: bool) -> tuple[str, bool]:
    """``(key, ephemeral)``: ephemeral is True for a random per-process key (debug only)."""
    key = env.get("DJANGO_SECRET_KEY", "").strip()
    problem = secret_key_problem(key)
    if problem is None:
        return key, False
    if key in KNOWN_PUBLIC_KEYS or not debug:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY {problem}: set it to a random value of at least {MIN_LENGTH} "
            "characters (e.g. python -c 'import secrets; print(secrets.token_urlsafe(64))'); "
            "scripts/run keeps one in var/secret_key")
    if not key:
        return secrets.token_urlsafe(64), True
    return key, False


def derived_jwt_key(secret: str) -> str:
    """The default HS256 key: HMAC-SHA256 of a fixed purpose string under the secret key."""
    return hmac.new(secret.encode(), b"hub.jwt.signing-key.v1", hashlib.sha256).hexdigest()


def _pem(env: Mapping[str, str], name: str) -> str:
    """A PEM from ``name``: the text itself (literal ``\\n`` allowed), or a file path."""
    raw = env.get(name, "").strip()
    if not raw:
        return ""
    text = raw.replace("\\n", "\n")
    if not text.startswith("-----BEGIN"):
        try:
            text = Path(raw).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name} is neither a PEM nor a readable file: {exc}") from None
    if not text.startswith("-----BEGIN") or "-----END" not in text:
        raise ImproperlyConfigured(f"{name} must be a PEM key (-----BEGIN ...) or a file holding one")
    return text + "\n"


def jwt_settings(env: Mapping[str, str], secret: str, access_minutes: float) -> dict:
    """The ``SIMPLE_JWT`` settings (see the module docstring)."""
    algorithm = env.get("HUB_JWT_ALGORITHM", "").strip().upper() or "HS256"
    if algorithm not in HMAC_ALGORITHMS + ASYMMETRIC_ALGORITHMS:
        raise ImproperlyConfigured(
            f"HUB_JWT_ALGORITHM must be one of {', '.join(HMAC_ALGORITHMS + ASYMMETRIC_ALGORITHMS)}")
    config: dict = {
        "ALGORITHM": algorithm,
        "ACCESS_TOKEN_LIFETIME": timedelta(minutes=access_minutes),
        "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
        "ISSUER": env.get("HUB_JWT_ISSUER", "").strip() or None,
        "AUDIENCE": env.get("HUB_JWT_AUDIENCE", "").strip() or None,
        "UPDATE_LAST_LOGIN": False,
        # Which claim names the user, and which user field it holds: an identity provider's
        # tokens carry e.g. preferred_username, not Django's primary key.
        "USER_ID_CLAIM": env.get("HUB_JWT_USER_ID_CLAIM", "").strip() or "user_id",
        "USER_ID_FIELD": env.get("HUB_JWT_USER_ID_FIELD", "").strip() or "id",
    }
    if config["USER_ID_FIELD"] not in ("id", "username", "email"):
        raise ImproperlyConfigured("HUB_JWT_USER_ID_FIELD must be id, username or email")
    raw_key = env.get("HUB_JWT_SIGNING_KEY", "").strip()
    if algorithm in HMAC_ALGORITHMS:
        if env.get("HUB_JWT_VERIFYING_KEY", "").strip():
            raise ImproperlyConfigured(
                "HUB_JWT_VERIFYING_KEY needs HUB_JWT_ALGORITHM RS256 or ES256 (a public key)")
        if raw_key:
            if raw_key in KNOWN_PUBLIC_KEYS or len(raw_key) < MIN_JWT_HMAC_KEY \
                    or len(set(raw_key)) < MIN_UNIQUE:
                raise ImproperlyConfigured(
                    f"HUB_JWT_SIGNING_KEY must be a random value of at least {MIN_JWT_HMAC_KEY} "
                    "characters")
            config["SIGNING_KEY"] = raw_key
        else:
            config["SIGNING_KEY"] = derived_jwt_key(secret)
        config["VERIFYING_KEY"] = ""
        return config
    verifying = _pem(env, "HUB_JWT_VERIFYING_KEY")
    if not verifying:
        raise ImproperlyConfigured(
            f"HUB_JWT_VERIFYING_KEY (the issuer's public key, PEM) is required with "
            f"HUB_JWT_ALGORITHM={algorithm}")
    if "PRIVATE KEY" in verifying:
        raise ImproperlyConfigured("HUB_JWT_VERIFYING_KEY must be a public key, not a private one")
    # Without the private key the hub verifies tokens but issues none. Then every token is
    # the provider's, and providers do not write simplejwt's token_type claim: the key, the
    # algorithm, expiry and (when set) issuer and audience decide.
    config["SIGNING_KEY"] = _pem(env, "HUB_JWT_SIGNING_KEY") or None
    config["VERIFYING_KEY"] = verifying
    if config["SIGNING_KEY"] is None:
        config["TOKEN_TYPE_CLAIM"] = None
    return config


def proxy_ssl_header(env: Mapping[str, str]) -> tuple[str, str] | None:
    """``DJANGO_SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https`` -> the tuple Django wants."""
    raw = env.get("DJANGO_SECURE_PROXY_SSL_HEADER", "").strip()
    if not raw:
        return None
    name, _, value = (part.strip() for part in raw.partition(","))
    if not name.startswith("HTTP_") or not value or "," in value:
        raise ImproperlyConfigured(
            "DJANGO_SECURE_PROXY_SSL_HEADER must be HEADER,VALUE with a META name, "
            "e.g. HTTP_X_FORWARDED_PROTO,https")
    return name, value
