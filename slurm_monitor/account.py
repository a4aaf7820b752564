"""The monitor's service account: the identity the ``http`` sink posts to the hub's REST API as.

Contract (issue 11, SECURITY review):

- **Dedicated**: created by the monitor itself (sync ORM, shared database) with an unusable
  password, not staff, not superuser, holding only ``hub.broadcast``; a ``hub.ServiceAccount``
  row marks it as the monitor's.
- **Never adopted by name**: if an account with the configured name exists without that marker
  (a person, an SSO login, a leftover), ``ServiceAccountError`` says so and names
  ``SLURM_MONITOR_SERVICE_USER``; the monitor does not start. A marked account that somebody
  made staff is demoted back (logged), and a deactivated one is refused, never reactivated.
  (The account an earlier release of the monitor created is marked once by migration
  ``hub.0003``, only on evidence a squatter cannot produce; see there.)
- **Rotatable**: ``rotate_service_token`` (``manage.py rotate_monitor_token``) replaces the
  DRF token; the running monitor reads the new one when the hub answers 401
  (``slurm_monitor.sinks.HttpSink``). The key is never printed or logged.

Sync ORM: call through ``sync_to_async`` from async code.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("slurm_monitor")

SERVICE = "slurm-monitor"
SETTING = "SLURM_MONITOR_SERVICE_USER"
PERMISSION = ("hub", "broadcast")


class ServiceAccountError(RuntimeError):
    """The service account cannot be used; the message says why and what to set."""


def _marked(user) -> bool:
    from hub.models import ServiceAccount

    return ServiceAccount.objects.filter(user=user, service=SERVICE).exists()


def _broadcast_permission():
    from django.contrib.auth.models import Permission

    app_label, codename = PERMISSION
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    if permission is None:
        raise ServiceAccountError(f"the permission {app_label}.{codename} does not exist: "
                                  "run `manage.py migrate` first")
    return permission


def _create(username: str):
    from django.contrib.auth import get_user_model
    from django.db import IntegrityError, transaction

    from hub.models import ServiceAccount

    model = get_user_model()
    permission = _broadcast_permission()
    try:
        with transaction.atomic():
            user = model(**{model.USERNAME_FIELD: username}, is_staff=False, is_superuser=False)
            user.set_unusable_password()
            user.save()
            user.user_permissions.add(permission)
            ServiceAccount.objects.create(user=user, service=SERVICE)
    except IntegrityError:  # created meanwhile (another monitor starting): check it as found
        return None
    logger.info("created the service account %r (hub.broadcast only, no password)", username)
    return user


def service_account(username: str):
    """The marked service account named ``username``, created if no account has that name.

    Raises ServiceAccountError when the name belongs to an unmarked account or the account
    was deactivated."""
    from django.contrib.auth import get_user_model

    model = get_user_model()
    user = model.objects.filter(**{model.USERNAME_FIELD: username}).first()
    if user is None:
        user = _create(username) or model.objects.get(**{model.USERNAME_FIELD: username})
    if not _marked(user):
        raise ServiceAccountError(
            f"an account named {username!r} already exists and is not the Slurm monitor's service "
            f"account; the monitor never adopts an existing account. Set {SETTING} to another name "
            "(the monitor creates that account), or remove this one if it is not a person's.")
    if not user.is_active:
        raise ServiceAccountError(f"the service account {username!r} is deactivated; reactivate it in "
                                  f"the admin or set {SETTING} to another name")
    if user.is_staff or user.is_superuser:
        logger.warning("the service account %r was made staff/superuser: demoting it (it needs only "
                       "hub.broadcast)", username)
        user.is_staff = user.is_superuser = False
        user.save(update_fields=["is_staff", "is_superuser"])
    permission = _broadcast_permission()
    if not user.user_permissions.filter(pk=permission.pk).exists():
        user.user_permissions.add(permission)
    return user


def ensure_service_token(username: str) -> str:
    """The DRF token key of the service account ``username`` (account and token created if
    needed). Idempotent; raises ServiceAccountError as ``service_account`` does."""
    from rest_framework.authtoken.models import Token

    token, _ = Token.objects.get_or_create(user=service_account(username))
    return token.key


def rotate_service_token(username: str) -> None:
    """Replace the service account's token: the old key stops working at once. Raises
    ServiceAccountError if ``username`` is not an existing service account."""
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    model = get_user_model()
    if not model.objects.filter(**{model.USERNAME_FIELD: username}).exists():
        raise ServiceAccountError(f"no account named {username!r}: the monitor creates its service "
                                  f"account when it first starts (name: {SETTING})")
    user = service_account(username)
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        Token.objects.create(user=user)
    logger.info("rotated the token of the service account %r", username)
