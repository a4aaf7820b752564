"""Sockets do not outlive their credentials (PROTOCOL.md §2): re-checked while they live,
closed with 4001 when the credential is gone.

Two roads, one guarantee:
- ``recheck`` (the guarantee): the housekeeping loop calls it once per heartbeat interval
  with every authenticated socket; one thread hop (``database_sync_to_async``) checks them
  all, batched: the users still active (one query per 500 users), the DRF tokens still
  existing and still the user's (one query per 500 tokens), each distinct session once
  through Django's own ``get_user`` (session alive, auth hash valid, i.e. the password not
  changed since). A JWT needs no database: ``expired`` compares its ``exp`` on every
  housekeeping tick. A socket whose credential is revoked is closed within two heartbeat
  intervals. Never per frame.
- ``revoke`` (at once): Django's ``user_logged_out`` (that session's sockets), a Token's
  ``post_delete`` (that token's sockets) and a user saved with ``is_active=False`` (all the
  user's sockets) send one control message (``Node.broadcast_control``) to every server
  process after the transaction commits; each process closes its matching sockets. Tokens
  and session keys cross processes only as digests (``hub.socket.auth.key_digest``).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Iterable

from channels.db import database_sync_to_async
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from hub.socket.auth import SESSION, TOKEN, Credential, key_digest, session_user
from hub.socket.protocol import CLOSE_AUTH_FAILED

logger = logging.getLogger("hub.socket.credentials")
REVOKED_REASON = "credentials no longer valid"
_BATCH = 500  # keys per IN (...) query: well under SQLite's variable limit


def expired(credential: Credential | None, now: float) -> bool:
    """A JWT past its ``exp`` (wall-clock seconds ``now``)."""
    return credential is not None and credential.expires is not None and now >= credential.expires


def _chunks(values: list, size: int = _BATCH):
    for start in range(0, len(values), size):
        yield values[start:start + size]


def revoked_sync(credentials: Iterable[Credential]) -> set[Credential]:
    """The credentials among ``credentials`` that no longer hold. Sync: database work."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    distinct = set(credentials)
    users = get_user_model().objects
    active: set[Any] = set()
    for ids in _chunks(sorted({c.user_id for c in distinct}, key=str)):
        active.update(users.filter(pk__in=ids, is_active=True).values_list("pk", flat=True))
    owners: dict[str, Any] = {}
    for keys in _chunks(sorted({c.key for c in distinct if c.kind == TOKEN and c.key})):
        owners.update(Token.objects.filter(key__in=keys).values_list("key", "user_id"))
    sessions: dict[str, Any] = {}
    now, bad = time.time(), set()
    for cred in distinct:
        if cred.user_id not in active or expired(cred, now):
            bad.add(cred)
        elif cred.kind == TOKEN:  # without a key there is nothing to find it by
            if cred.key is None or owners.get(cred.key) != cred.user_id:
                bad.add(cred)
        elif cred.kind == SESSION:
            if cred.key is None or _session_owner(sessions, cred.key) != cred.user_id:
                bad.add(cred)
    return bad


def _session_owner(owners: dict[str, Any], session_key: str) -> Any:
    """The pk of the session's user (None if it no longer holds), looked up once per key."""
    if session_key not in owners:
        user = session_user(session_key)
        owners[session_key] = None if user is None else user.pk
    return owners[session_key]


_revoked = database_sync_to_async(revoked_sync)


async def recheck(conns: list) -> None:
    """Close (4001) each of ``conns`` (objects with ``credential`` and ``request_close``)
    whose credential no longer holds. Errors are logged: the next beat tries again."""
    creds = [conn.credential for conn in conns]
    try:
        bad = await _revoked(creds)
    except Exception:
        logger.warning("credential re-check failed (database down?); retrying next beat",
                       exc_info=True)
        return
    if bad:
        for conn, cred in zip(conns, creds):
            if cred in bad:
                conn.request_close(CLOSE_AUTH_FAILED, REVOKED_REASON)


def on_control(connections: dict, data: dict) -> None:
    """A node's control handler: close the local sockets a ``revoke`` message names."""
    kind, value = data.get("revoke"), data.get("v")
    if kind not in (TOKEN, SESSION, "user") or not isinstance(value, str):
        return
    for conn in list(connections.values()):
        cred = getattr(conn, "credential", None)
        if cred is None:
            continue
        if (str(cred.user_id) == value if kind == "user"
                else cred.kind == kind and cred.digest == value):
            conn.request_close(CLOSE_AUTH_FAILED, REVOKED_REASON)


def revoke(kind: str, value: str) -> None:
    """Tell every server process to close the sockets using this credential, once the
    current transaction commits (a rolled-back delete revokes nothing). Sync callers."""
    transaction.on_commit(lambda: _send({"revoke": kind, "v": value}))


def _send(data: dict) -> None:
    from asgiref.sync import async_to_sync

    from hub.engine.node import get_node

    async def send() -> None:
        await get_node().broadcast_control(data)

    try:
        async_to_sync(send)()
    except Exception:  # never fail a logout or a delete: the re-check still closes them
        logger.warning("revocation not broadcast; sockets close at the next re-check",
                       exc_info=True)


@receiver(user_logged_out, dispatch_uid="hub.socket.credentials.logged_out")
def _on_logout(sender, request=None, user=None, **kwargs) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        revoke(SESSION, key_digest(key))


@receiver(post_delete, sender="authtoken.Token", dispatch_uid="hub.socket.credentials.token_deleted")
def _on_token_deleted(sender, instance, **kwargs) -> None:
    revoke(TOKEN, key_digest(instance.key))


def _on_user_saved(sender, instance, created=False, **kwargs) -> None:
    if not created and getattr(instance, "is_active", True) is False:
        revoke("user", str(instance.pk))


def _connect_user_signal() -> None:
    from django.conf import settings

    post_save.connect(_on_user_saved, sender=settings.AUTH_USER_MODEL,
                      dispatch_uid="hub.socket.credentials.user_saved")


_connect_user_signal()
