"""The LDAP backend (django-auth-ldap) ``realtime_project.logins`` installs when
``HUB_LDAP_SERVER_URI`` is set; imported only then (python-ldap is optional)."""

from __future__ import annotations

from django.conf import settings
from django_auth_ldap.backend import LDAPBackend

from hub.identity import set_slurm_user


class HubLDAPBackend(LDAPBackend):
    """django-auth-ldap's backend; ``HUB_LDAP_SLURM_USER_ATTR`` (e.g. ``uid``) is read from
    the user's entry at each login."""

    def authenticate_ldap_user(self, ldap_user, password):
        user = super().authenticate_ldap_user(ldap_user, password)
        attribute = getattr(settings, "HUB_LDAP_SLURM_USER_ATTR", "")
        if user is not None and attribute:
            values = ldap_user.attrs.get(attribute) or []
            if values:
                set_slurm_user(user, str(values[0]), source="LDAP")
        return user
