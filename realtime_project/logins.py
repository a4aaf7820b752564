"""Site logins (issue 15): optional REMOTE_USER, LDAP and OIDC hooks, read from the environment.

``site_logins(env)`` returns the settings to merge; the settings module calls it once. With
none of the variables below set (the embedded default) it returns the password login alone,
imports nothing, and needs none of the optional packages.

- **REMOTE_USER** (``HUB_REMOTE_USER_HEADER``, e.g. ``HTTP_X_REMOTE_USER``): a reverse proxy
  that authenticates people (Kerberos/SPNEGO, SAML, CAS, ...) names the user in this request
  header; ``PersistentRemoteUserMiddleware`` logs the session in as that user (created on
  first sight) and keeps it when later requests (the WebSocket's) carry no header. The
  header is trusted only when this variable names it, and then it is *the* password: the
  hub must be reachable only through that proxy, and the proxy must strip the header from
  every client request before setting its own. ``HUB_REMOTE_SLURM_USER_HEADER`` (optional)
  names a second header with the person's Slurm user, read at the same logins only.
- **LDAP** (``HUB_LDAP_SERVER_URI``, needs ``django-auth-ldap``): the login forms check the
  password against the directory; accounts are created on first login. Bind with
  ``HUB_LDAP_BIND_DN``/``HUB_LDAP_BIND_PASSWORD`` and find the entry under
  ``HUB_LDAP_USER_SEARCH_BASE`` with ``HUB_LDAP_USER_FILTER`` (default ``(uid=%(user)s)``), or
  bind as ``HUB_LDAP_USER_DN_TEMPLATE`` (``uid=%(user)s,ou=people,dc=example,dc=edu``).
  ``HUB_LDAP_START_TLS`` upgrades ``ldap://``. ``HUB_LDAP_SLURM_USER_ATTR`` (e.g. ``uid``)
  names the attribute holding the Slurm user.
- **OIDC** (``HUB_OIDC_CLIENT_ID``, needs ``mozilla-django-oidc``): the authorization-code
  flow at ``/oidc/authenticate/`` (callback ``/oidc/callback/``). ``HUB_OIDC_CLIENT_SECRET``,
  ``HUB_OIDC_SIGN_ALGO`` (RS256), the provider's endpoints ``HUB_OIDC_AUTHORIZATION_ENDPOINT``,
  ``HUB_OIDC_TOKEN_ENDPOINT``, ``HUB_OIDC_USER_ENDPOINT``, ``HUB_OIDC_JWKS_ENDPOINT`` or, for
  any left unset, discovery from ``HUB_OIDC_ISSUER`` at start-up (which then also pins the
  ID token's ``iss``). ``HUB_OIDC_USERNAME_CLAIM`` (``preferred_username``) names the user,
  ``HUB_OIDC_SLURM_USER_CLAIM`` (optional) their Slurm user; ``HUB_OIDC_SCOPES``
  (``openid email profile``); ``HUB_OIDC_CREATE_USERS`` (true).

``HUB_LOGIN_URL`` (default ``/accounts/login/``) is where a signed-out visitor is sent, e.g.
``/oidc/authenticate/`` on a site that logs in through OIDC only.

``hub.rest.login_throttle.LockoutBackend`` stays first in AUTHENTICATION_BACKENDS: it refuses
every backend's attempts during a lockout. The backends themselves are in
``realtime_project.login_backends`` (REMOTE_USER), ``login_ldap`` and ``login_oidc`` (they
import Django models, which this module must not: the settings module imports it before
Django is set up).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any, Mapping

from django.core.exceptions import ImproperlyConfigured

BACKENDS = "realtime_project.login_backends"
LOCKOUT_BACKEND = "hub.rest.login_throttle.LockoutBackend"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"
REMOTE_USER_MIDDLEWARE = f"{BACKENDS}.HubRemoteUserMiddleware"
DISCOVERY_TIMEOUT_SECONDS = 10.0
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _get(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, "").strip() or default


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = _get(env, name).lower()
    if not raw:
        return default
    if raw in _TRUE | _FALSE:
        return raw in _TRUE
    raise ImproperlyConfigured(f"{name} must be true or false, got {raw!r}")


def _meta_header(env: Mapping[str, str], name: str) -> str:
    raw = _get(env, name)
    if raw and (not raw.startswith("HTTP_") or not raw[5:].replace("_", "").isalnum()):
        raise ImproperlyConfigured(
            f"{name} must be a request.META name such as HTTP_X_REMOTE_USER (the header "
            f"X-Remote-User), got {raw!r}")
    return raw


def _require(package: str, module: str, variable: str) -> None:
    try:
        __import__(module)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"{variable} is set but {package} is not installed ({exc}): pip install {package} "
            "(pinned in requirements.txt)") from None


def site_logins(env: Mapping[str, str], middleware: list[str]) -> dict[str, Any]:
    """The settings for the configured site logins (see the module docstring): always
    ``AUTHENTICATION_BACKENDS``, ``MIDDLEWARE`` and ``LOGIN_URL``; more per hook."""
    out: dict[str, Any] = {"LOGIN_URL": _get(env, "HUB_LOGIN_URL", "/accounts/login/"),
                           "HUB_SITE_LOGINS": []}
    backends = [LOCKOUT_BACKEND]
    middleware = list(middleware)

    header = _meta_header(env, "HUB_REMOTE_USER_HEADER")
    slurm_header = _meta_header(env, "HUB_REMOTE_SLURM_USER_HEADER")
    if slurm_header and not header:
        raise ImproperlyConfigured("HUB_REMOTE_SLURM_USER_HEADER needs HUB_REMOTE_USER_HEADER")
    if header:
        if slurm_header == header:
            raise ImproperlyConfigured("HUB_REMOTE_SLURM_USER_HEADER must differ from HUB_REMOTE_USER_HEADER")
        middleware.insert(middleware.index(AUTH_MIDDLEWARE) + 1, REMOTE_USER_MIDDLEWARE)
        backends.append(f"{BACKENDS}.HubRemoteUserBackend")
        out.update(HUB_REMOTE_USER_HEADER=header, HUB_REMOTE_SLURM_USER_HEADER=slurm_header)
        out["HUB_SITE_LOGINS"].append("remote_user")

    if _get(env, "HUB_LDAP_SERVER_URI"):
        out.update(_ldap(env))
        backends.append("realtime_project.login_ldap.HubLDAPBackend")
        out["HUB_SITE_LOGINS"].append("ldap")

    if _get(env, "HUB_OIDC_CLIENT_ID"):
        out.update(_oidc(env))
        backends.append("realtime_project.login_oidc.HubOIDCBackend")
        out["HUB_SITE_LOGINS"].append("oidc")

    backends.append(MODEL_BACKEND)  # local accounts (admin, the monitor's service account)
    out["AUTHENTICATION_BACKENDS"] = backends
    out["MIDDLEWARE"] = middleware
    return out


def _ldap(env: Mapping[str, str]) -> dict[str, Any]:
    _require("django-auth-ldap", "django_auth_ldap", "HUB_LDAP_SERVER_URI")
    import ldap
    from django_auth_ldap.config import LDAPSearch

    uri = _get(env, "HUB_LDAP_SERVER_URI")
    if not uri.startswith(("ldap://", "ldaps://", "ldapi://")):
        raise ImproperlyConfigured("HUB_LDAP_SERVER_URI must start with ldap://, ldaps:// or ldapi://")
    config: dict[str, Any] = {
        "AUTH_LDAP_SERVER_URI": uri,
        "AUTH_LDAP_BIND_DN": _get(env, "HUB_LDAP_BIND_DN"),
        "AUTH_LDAP_BIND_PASSWORD": env.get("HUB_LDAP_BIND_PASSWORD", ""),
        "AUTH_LDAP_START_TLS": _bool(env, "HUB_LDAP_START_TLS", False),
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        "AUTH_LDAP_CONNECTION_OPTIONS": {ldap.OPT_NETWORK_TIMEOUT: 10, ldap.OPT_TIMEOUT: 10},
        "HUB_LDAP_SLURM_USER_ATTR": _get(env, "HUB_LDAP_SLURM_USER_ATTR"),
    }
    template = _get(env, "HUB_LDAP_USER_DN_TEMPLATE")
    base = _get(env, "HUB_LDAP_USER_SEARCH_BASE")
    if template and base:
        raise ImproperlyConfigured("set HUB_LDAP_USER_DN_TEMPLATE or HUB_LDAP_USER_SEARCH_BASE, not both")
    if template:
        if "%(user)s" not in template:
            raise ImproperlyConfigured("HUB_LDAP_USER_DN_TEMPLATE must contain %(user)s")
        config["AUTH_LDAP_USER_DN_TEMPLATE"] = template
    elif base:
        user_filter = _get(env, "HUB_LDAP_USER_FILTER", "(uid=%(user)s)")
        if "%(user)s" not in user_filter:
            raise ImproperlyConfigured("HUB_LDAP_USER_FILTER must contain %(user)s")
        config["AUTH_LDAP_USER_SEARCH"] = LDAPSearch(base, ldap.SCOPE_SUBTREE, user_filter)
    else:
        raise ImproperlyConfigured(
            "HUB_LDAP_SERVER_URI needs HUB_LDAP_USER_SEARCH_BASE (with HUB_LDAP_BIND_DN unless "
            "anonymous search is allowed) or HUB_LDAP_USER_DN_TEMPLATE")
    return config


OIDC_ENDPOINTS = {  # our variable -> (mozilla-django-oidc setting, discovery document key)
    "HUB_OIDC_AUTHORIZATION_ENDPOINT": ("OIDC_OP_AUTHORIZATION_ENDPOINT", "authorization_endpoint"),
    "HUB_OIDC_TOKEN_ENDPOINT": ("OIDC_OP_TOKEN_ENDPOINT", "token_endpoint"),
    "HUB_OIDC_USER_ENDPOINT": ("OIDC_OP_USER_ENDPOINT", "userinfo_endpoint"),
    "HUB_OIDC_JWKS_ENDPOINT": ("OIDC_OP_JWKS_ENDPOINT", "jwks_uri"),
}


def discover(issuer: str, timeout: float = DISCOVERY_TIMEOUT_SECONDS) -> dict[str, Any]:
    """The provider's ``/.well-known/openid-configuration`` (ImproperlyConfigured if it
    cannot be read, or names another issuer)."""
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (operator's URL)
            document = json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"HUB_OIDC_ISSUER: cannot read {url} ({exc}); set the HUB_OIDC_*_ENDPOINT variables "
            "to start without the provider") from None
    if not isinstance(document, dict) or document.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise ImproperlyConfigured(f"HUB_OIDC_ISSUER: {url} names another issuer")
    return document


def _oidc(env: Mapping[str, str]) -> dict[str, Any]:
    _require("mozilla-django-oidc", "mozilla_django_oidc", "HUB_OIDC_CLIENT_ID")
    algo = _get(env, "HUB_OIDC_SIGN_ALGO", "RS256").upper()
    if algo not in ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "HS256"):
        raise ImproperlyConfigured("HUB_OIDC_SIGN_ALGO must be RS256/384/512, ES256/384/512 or HS256")
    secret = env.get("HUB_OIDC_CLIENT_SECRET", "")
    if not secret:
        raise ImproperlyConfigured("HUB_OIDC_CLIENT_ID needs HUB_OIDC_CLIENT_SECRET")
    issuer = _get(env, "HUB_OIDC_ISSUER")
    config: dict[str, Any] = {
        "OIDC_RP_CLIENT_ID": _get(env, "HUB_OIDC_CLIENT_ID"),
        "OIDC_RP_CLIENT_SECRET": secret,
        "OIDC_RP_SIGN_ALGO": algo,
        "OIDC_RP_SCOPES": _get(env, "HUB_OIDC_SCOPES", "openid email profile"),
        "OIDC_CREATE_USER": _bool(env, "HUB_OIDC_CREATE_USERS", True),
        "OIDC_TIMEOUT": DISCOVERY_TIMEOUT_SECONDS,  # the library's default waits for ever
        "OIDC_USE_PKCE": True,
        # Not "/" (the library's default): behind HUB_LOGIN_URL=/oidc/authenticate/ that would
        # send a refused login straight back to the provider, round and round.
        "LOGIN_REDIRECT_URL_FAILURE": _get(env, "HUB_OIDC_FAILURE_URL", "/accounts/login/"),
        "HUB_OIDC_ISSUER": issuer,
        "HUB_OIDC_USERNAME_CLAIM": _get(env, "HUB_OIDC_USERNAME_CLAIM", "preferred_username"),
        "HUB_OIDC_SLURM_USER_CLAIM": _get(env, "HUB_OIDC_SLURM_USER_CLAIM"),
    }
    missing = [name for name in OIDC_ENDPOINTS if not _get(env, name)]
    needed = [n for n in missing if n != "HUB_OIDC_JWKS_ENDPOINT" or algo != "HS256"]
    document = discover(issuer) if needed and issuer else {}
    for name, (setting, key) in OIDC_ENDPOINTS.items():
        value = _get(env, name) or document.get(key, "")
        if not value and (name != "HUB_OIDC_JWKS_ENDPOINT" or algo != "HS256"):
            raise ImproperlyConfigured(f"HUB_OIDC_CLIENT_ID needs {name} (or HUB_OIDC_ISSUER for discovery)")
        if value and not value.startswith(("https://", "http://")):
            raise ImproperlyConfigured(f"{name} must be an http(s) URL")
        config[setting] = value or None
    return config
