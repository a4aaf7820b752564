"""Lockout with exponential backoff after repeated failed logins, per username and per
client address, on every road that checks a password through ``django.contrib.auth``.

Counting: Django's ``user_login_failed`` signal adds one failure for the username (case
folded) and one for the address. From HUB_LOGIN_MAX_FAILURES failures on (default 5; an
address gets 4x as many, since many users share one NAT) the key is locked for
HUB_LOGIN_LOCKOUT_SECONDS (default 30), doubling with each further failure, at most
MAX_LOCKOUT_SECONDS. Attempts refused while locked do not count (an attacker gets one guess
per lockout; the owner is not locked out for ever). A successful login (``user_logged_in``)
clears the username's count. Counts live in Django's cache for FORGET_AFTER_SECONDS after
the last failure or lockout: per process with the default local-memory cache, cluster-wide
with a shared cache.

Refusing: ``throttled(view)`` wraps the login form views (``/accounts/login/``,
``/admin/login/``): a POST while locked answers 429 "try again in N s" with ``Retry-After``
(JSON under /api/) without checking the password. ``LockoutBackend``, first in
AUTHENTICATION_BACKENDS, refuses every other ``authenticate()`` call while locked (token
endpoints, any future road), even with the right password.
"""

from __future__ import annotations

import hashlib
import math
import time
from functools import wraps

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpResponse, JsonResponse

from realtime_project.env import env_number

MAX_FAILURES_DEFAULT = 5
LOCKOUT_SECONDS_DEFAULT = 30.0
MAX_LOCKOUT_SECONDS = 3600.0
FORGET_AFTER_SECONDS = 900.0
ADDRESS_FACTOR = 4
_PREFIX = "hub.login."


def now() -> float:  # a seam for tests
    return time.time()


def max_failures() -> int:
    return env_number("HUB_LOGIN_MAX_FAILURES", MAX_FAILURES_DEFAULT, 1, cast=int)


def lockout_seconds() -> float:
    return env_number("HUB_LOGIN_LOCKOUT_SECONDS", LOCKOUT_SECONDS_DEFAULT, 0.0, exclusive=True)


def _keys(username: str | None, address: str | None) -> list[tuple[str, int]]:
    """(cache key, failures allowed) for the username and the address that are known."""
    limit = max_failures()
    keys = []
    if username:
        digest = hashlib.sha256(username.casefold().encode("utf-8", "surrogatepass")).hexdigest()
        keys.append((f"{_PREFIX}user.{digest}", limit))
    if address:
        keys.append((f"{_PREFIX}addr.{address}", limit * ADDRESS_FACTOR))
    return keys


def seconds_locked(username: str | None, address: str | None) -> float:
    """How long until this username and address may try again (0: they may now)."""
    wait = 0.0
    for key, _limit in _keys(username, address):
        state = cache.get(key)
        if state:
            wait = max(wait, state.get("until", 0.0) - now())
    return max(wait, 0.0)


def record_failure(username: str | None, address: str | None) -> None:
    if seconds_locked(username, address) > 0:
        return  # refused without a password check: not another guess
    for key, limit in _keys(username, address):
        state = cache.get(key) or {"failures": 0, "until": 0.0}
        state["failures"] += 1
        over = state["failures"] - limit
        if over >= 0:
            lock = min(lockout_seconds() * 2 ** min(over, 32), MAX_LOCKOUT_SECONDS)
            state["until"] = now() + lock
        cache.set(key, state, timeout=max(state["until"] - now(), 0) + FORGET_AFTER_SECONDS)


def clear(username: str | None) -> None:
    for key, _limit in _keys(username, None):
        cache.delete(key)


def client_address(request) -> str | None:
    """The peer address (behind a proxy: daphne's ``--proxy-headers`` sets it)."""
    return getattr(request, "META", {}).get("REMOTE_ADDR") if request is not None else None


@receiver(user_login_failed, dispatch_uid="hub.rest.login_throttle.failed")
def _on_failure(sender, credentials, request=None, **kwargs):
    record_failure(credentials.get("username"), client_address(request))


@receiver(user_logged_in, dispatch_uid="hub.rest.login_throttle.succeeded")
def _on_success(sender, request, user, **kwargs):
    clear(user.get_username())


class LockoutBackend:
    """Refuses ``authenticate()`` while the username or the address is locked (raising
    PermissionDenied stops Django trying the next backends); otherwise defers to them."""

    def authenticate(self, request, username=None, **kwargs):
        if seconds_locked(username, client_address(request)) > 0:
            raise PermissionDenied("too many failed logins")
        return None

    def get_user(self, user_id):
        # Sessions record the backend that logged them in; Django's force_login names the
        # first one listed, this one: it loads users as the user table's backend does.
        from django.contrib.auth.backends import ModelBackend

        return ModelBackend().get_user(user_id)


def too_many(request, wait: float) -> HttpResponse:
    seconds = max(1, math.ceil(wait))
    message = f"too many failed logins: try again in {seconds} s"
    response: HttpResponse
    if request.path.startswith("/api/"):
        response = JsonResponse({"code": "throttled", "message": message}, status=429)
    else:
        response = HttpResponse(message + "\n", status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(seconds)
    return response


def throttled(view):
    """Wrap a login view: a POST while locked answers 429 before any password check."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method == "POST":
            wait = seconds_locked(request.POST.get("username"), client_address(request))
            if wait > 0:
                return too_many(request, wait)
        return view(request, *args, **kwargs)

    return wrapper
