"""Who a hub user is in Slurm: ``slurm_user_for(user)``, the ONE place that answers it.

Every account has one *Slurm user name*: its ``HubProfile.slurm_user`` when set, else its
Django username (the embedded default: the names are the same and no profile exists). Slurm
data is addressed by that name, so everything that matches a Django user with Slurm data goes
through this function:

- the socket's implicit personal channel is ``user:<slurm user>``, and the ``owner`` rule of
  ``user:*`` admits exactly the principal whose Slurm user is the suffix (staff: any). The
  monitor publishes a job's events on ``user:<job owner>`` and creates notifications for the
  job owner, so they reach the person mapped to that Slurm user;
- per-user notifications are listed, read and created-for-yourself under the Slurm user name;
- ``HUB_PRIVATE_JOBS`` filters ``/api/cluster/jobs`` by it, and the dashboard's "Mine" is it.

Why one name and not "the username or the Slurm user": ``user:<name>`` and a notification's
``user`` are one namespace. Admitting both names would let the account literally called
``asmith`` read what the monitor sends to the Slurm user ``asmith`` after an administrator
gave that Slurm user to ``alice.smith``. So the Django username of a mapped account names no
channel of its own (a broadcaster addressing people uses Slurm user names).

One Slurm user, one account: a mapping is refused (``slurm_user_problem``) when the name is
another account's effective Slurm user (its mapping, or its username when it has none). An
account created *later* whose username another account's mapping already claims has no Slurm
identity at all (``slurm_user_for`` returns ``""``: no personal channel, no jobs, no personal
notifications) until staff map it: the explicit mapping wins, never both.

Sync only (database); call it where the user is loaded (``hub.socket.auth.principal_for``, views).
"""

from __future__ import annotations

import logging


logger = logging.getLogger(__name__)

NO_SLURM_USER = ""  # an account whose own name another account's mapping claims


def slurm_user_for(user) -> str:
    """The Slurm user name of ``user`` (a Django user), ``""`` for anonymous or for an
    unmapped account whose username another account's mapping claims. One query."""
    if user is None or not getattr(user, "is_authenticated", False) or user.pk is None:
        return NO_SLURM_USER
    from django.db.models import Q

    from hub.models import HubProfile

    username = user.get_username()
    rows = list(HubProfile.objects.filter(Q(user_id=user.pk) | Q(slurm_user=username))
                .values_list("user_id", "slurm_user"))
    own = next((name for owner, name in rows if owner == user.pk), "")
    if own:
        return own
    if any(owner != user.pk for owner, _name in rows):
        return NO_SLURM_USER  # claimed by another account's explicit mapping
    return username


def slurm_user_problem(user, slurm_user: str) -> str | None:
    """Why ``user`` may not have the mapping ``slurm_user``, or None (``hub.models``)."""
    from hub.models import slurm_user_problem as problem

    return problem(user, slurm_user)


def set_slurm_user(user, slurm_user: str, *, source: str) -> bool:
    """Record ``user``'s Slurm user as a login hook asserts it (``source`` names the hook in
    the log). Refused (logged, False) when ``slurm_user_problem`` objects: the account keeps
    its previous mapping, the login itself goes on. A blank value changes nothing (a hook
    that sends no Slurm user leaves staff's mapping alone)."""
    from django.db import IntegrityError, transaction

    from hub.models import HubProfile

    slurm_user = (slurm_user or "").strip()
    if not slurm_user:
        return False
    current = HubProfile.objects.filter(user_id=user.pk).values_list("slurm_user", flat=True).first()
    if current == slurm_user:
        return True
    problem = slurm_user_problem(user, slurm_user)
    if problem:
        logger.error("%s: Slurm user of %r not set to %r: %s", source, user.get_username(),
                     slurm_user, problem)
        return False
    try:
        with transaction.atomic():
            HubProfile.objects.update_or_create(user=user, defaults={"slurm_user": slurm_user})
    except IntegrityError:  # a concurrent mapping took the name first
        logger.error("%s: Slurm user %r of %r taken meanwhile", source, slurm_user,
                     user.get_username())
        return False
    logger.info("%s: %r is Slurm user %r", source, user.get_username(), slurm_user)
    return True
