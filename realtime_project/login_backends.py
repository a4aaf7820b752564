"""The REMOTE_USER middleware and backend ``realtime_project.logins`` installs (issue 15);
LDAP's and OIDC's are ``login_ldap`` and ``login_oidc`` (each imports its optional library).

Each backend, after Django or the library has authenticated the person, records the Slurm user
the login asserted (a header, an LDAP attribute, an OIDC claim) through
``hub.identity.set_slurm_user``, which refuses one that is another account's. A hook that
asserts none leaves the mapping staff set in admin alone.
"""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.backends import RemoteUserBackend
from django.contrib.auth.middleware import PersistentRemoteUserMiddleware

from hub.identity import set_slurm_user
from hub.socket.protocol import is_valid_username

logger = logging.getLogger("hub.logins")


# --- REMOTE_USER --------------------------------------------------------------------------

class HubRemoteUserMiddleware(PersistentRemoteUserMiddleware):
    """Django's middleware reading ``settings.HUB_REMOTE_USER_HEADER`` (a ``request.META``
    name), and keeping the session when a request comes without it (persistent).

    Only installed when that setting is set. The async path runs the sync one in a thread:
    Django 5.2's own async path looks the header up under a second ``HTTP_`` prefix, so under
    daphne it would never see it."""

    def __init__(self, get_response) -> None:
        super().__init__(get_response)
        self.header = getattr(settings, "HUB_REMOTE_USER_HEADER", "")  # type: ignore[misc]  # per site

    async def aprocess_request(self, request) -> None:
        await sync_to_async(self.process_request, thread_sensitive=True)(request)


class HubRemoteUserBackend(RemoteUserBackend):
    """Accounts named by the proxy's header, created on first sight. A name Django's
    username validator would refuse is refused here. ``HUB_REMOTE_SLURM_USER_HEADER``, when
    set and present on the request, is the person's Slurm user."""

    def authenticate(self, request, remote_user):
        if not is_valid_username(remote_user):
            if remote_user:
                logger.warning("REMOTE_USER: refused the user name %r (not a valid username)",
                               remote_user[:200])
            return None
        return super().authenticate(request, remote_user)

    def configure_user(self, request, user, created=True):
        if created:
            user.set_unusable_password()  # the proxy is the password; none here to guess
            user.save(update_fields=["password"])
        header = getattr(settings, "HUB_REMOTE_SLURM_USER_HEADER", "")
        if header and request is not None:
            set_slurm_user(user, request.META.get(header, ""), source="REMOTE_USER")
        return user
