"""Origin check at the WebSocket handshake (PROTOCOL.md §2).

A handshake with an ``Origin`` header opens only when that origin matches an allowed one
exactly: scheme, host and port (another port or scheme on the same host is another origin,
e.g. a user's Jupyter on the login node). Allowed are:

- the hub's own origin, as Django's CSRF check sees it: ``https`` when the socket is ``wss``
  (or when ``SECURE_PROXY_SSL_HEADER`` says so, like ``request.is_secure()``), else ``http``;
  host and port from the ``Host`` header (``X-Forwarded-Host`` with ``USE_X_FORWARDED_HOST``),
  and only when that host is in ``ALLOWED_HOSTS`` (so a DNS-rebound name is not "own");
- ``CSRF_TRUSTED_ORIGINS`` and ``HUB_ALLOWED_ORIGINS``: full origins, or Django's
  ``https://*.example.com`` form for a domain and its subdomains (same rule as Django's CSRF);
- everything, when ``HUB_ALLOWED_ORIGINS`` holds ``*`` (development only: logged at start-up).

``ALLOWED_HOSTS = ["*"]`` widens only which Host is "own", never which Origin may connect to
which host. No ``Origin`` header (non-browser clients): the check passes; browsers always send
one on a WebSocket handshake. A refused handshake is closed before accept, which daphne
answers with HTTP 403 and no socket.

The functions above ``warn_if_any_origin`` read no settings (they are called from the
settings module to validate the lists).
"""

from __future__ import annotations

import logging
from typing import Iterable
from urllib.parse import urlsplit

from django.utils.http import is_same_domain

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port, or None when ``origin``
    is not an http(s) origin (``null``, ``file://``, a path, user info, garbage)."""
    text = origin.strip().lower()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return None
    if (parts.scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc
            or parts.path not in ("", "/") or parts.query or parts.fragment):
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is not None and port != DEFAULT_PORTS[parts.scheme]:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}"


def origin_entry_problem(entry: str) -> str | None:
    """Why a configured entry is not an origin (None when it is one): a full origin or
    ``scheme://*.domain[:port]``."""
    text = entry.strip()
    wildcard = "://*." in text
    probe = text.replace("://*.", "://", 1) if wildcard else text
    if "*" in probe or normalize_origin(probe) is None:
        return "is not an origin: give scheme://host[:port] (e.g. https://hub.example.edu)"
    return None


def _split(allowed: Iterable[str]) -> tuple[set[str], dict[str, list[str]]]:
    exact: set[str] = set()
    wildcards: dict[str, list[str]] = {}
    for entry in allowed:
        text = entry.strip()
        if "://*." in text:
            scheme, _, rest = text.partition("://*.")
            normalized = normalize_origin(f"{scheme}://{rest}")
            if normalized:
                scheme, _, netloc = normalized.partition("://")
                wildcards.setdefault(scheme, []).append("." + netloc)
        else:
            normalized = normalize_origin(text)
            if normalized:
                exact.add(normalized)
    return exact, wildcards


def origin_allowed(origin: str, allowed: Iterable[str], own: str | None = None) -> bool:
    """Whether ``origin`` (an Origin header's value) may open a socket. ``allowed``: full
    origins, ``scheme://*.domain`` patterns or ``*``; ``own``: the hub's origin for this
    request (see ``own_origin``), or None when it cannot be trusted."""
    allowed = list(allowed)
    if "*" in (entry.strip() for entry in allowed):
        return True
    normalized = normalize_origin(origin)
    if normalized is None:
        return False
    if own is not None and normalized == normalize_origin(own):
        return True
    exact, wildcards = _split(allowed)
    if normalized in exact:
        return True
    scheme, _, netloc = normalized.partition("://")
    return any(is_same_domain(netloc, pattern) for pattern in wildcards.get(scheme, ()))


def _headers(scope) -> dict[bytes, str]:
    found: dict[bytes, str] = {}
    for name, value in scope.get("headers", ()):
        found.setdefault(name.lower(), value.decode("latin-1"))
    return found


def own_origin(scope, allowed_hosts: list[str], proxy_ssl_header: tuple[str, str] | None = None,
               use_x_forwarded_host: bool = False) -> str | None:
    """The hub's own origin for this handshake, or None when its Host is not allowed."""
    from django.http.request import split_domain_port, validate_host

    headers = _headers(scope)
    secure = scope.get("scheme") in ("wss", "https")
    if proxy_ssl_header:
        name, secure_value = proxy_ssl_header
        # META name HTTP_X_FORWARDED_PROTO is the header x-forwarded-proto
        value = headers.get(name.removeprefix("HTTP_").replace("_", "-").lower().encode())
        if value is not None:
            secure = value.split(",", 1)[0].strip() == secure_value
    host = headers.get(b"host", "")
    if use_x_forwarded_host and b"x-forwarded-host" in headers:
        host = headers[b"x-forwarded-host"].split(",", 1)[0].strip()
    domain, _port = split_domain_port(host)
    if not domain or not validate_host(domain, allowed_hosts):
        return None
    return normalize_origin(f"{'https' if secure else 'http'}://{host}")


def warn_if_any_origin() -> None:
    """Log once (when the socket application is built) that ``*`` lets any page in."""
    from hub.conf import hub_settings

    if "*" in hub_settings.ALLOWED_ORIGINS:
        logger.warning("HUB_ALLOWED_ORIGINS=*: any web page may open sockets with its "
                       "visitors' cookies (cross-site WebSocket hijacking); development only")


def handshake_allowed(scope) -> bool:
    """Whether a WebSocket handshake may open: no ``Origin`` header, or an allowed one. The
    consumer asks this first (``HubConsumer.run``), before any other work; a refused
    handshake is closed before accept (HTTP 403)."""
    origin = _headers(scope).get(b"origin")
    return origin is None or allows(scope, origin)


def allows(scope, origin: str) -> bool:
    from django.conf import settings

    from hub.conf import hub_settings

    allowed = [*hub_settings.ALLOWED_ORIGINS, *settings.CSRF_TRUSTED_ORIGINS]
    hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not hosts:  # as HttpRequest.get_host() does
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    own = own_origin(scope, hosts, settings.SECURE_PROXY_SSL_HEADER,
                     settings.USE_X_FORWARDED_HOST)
    return origin_allowed(origin, allowed, own)
