"""``manage.py ensure_admin``: make sure someone can log in to the dashboard and the admin.

Creates the superuser ``HUB_ADMIN_USER`` (default ``admin``) when no superuser exists, with
``HUB_ADMIN_PASSWORD`` or a random password that is printed once. Never changes an existing
account."""

from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the first superuser for the dashboard and admin if there is none."

    def handle(self, *args, **options) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("HUB_ADMIN_USER", "admin")
        password = os.environ.get("HUB_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        users.objects.create_superuser(username=username, password=password, email="")
        shown = "(from HUB_ADMIN_PASSWORD)" if os.environ.get("HUB_ADMIN_PASSWORD") else password
        self.stdout.write(f"==> created superuser {username!r}, password {shown}")
