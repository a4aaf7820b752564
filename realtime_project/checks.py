"""Deployment checks (``manage.py check --deploy``) for what settings.py lets through in
DEBUG only, so a development configuration is never mistaken for a production one."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

from realtime_project.security import secret_key_problem


@checks.register(checks.Tags.security, deploy=True)
def check_hub_secrets(app_configs, **kwargs):
    errors = []
    if getattr(settings, "HUB_SECRET_KEY_EPHEMERAL", False):
        errors.append(checks.Error(
            "DJANGO_SECRET_KEY is not set: this process signs sessions and JWTs with a random "
            "key of its own, which no other process shares and a restart forgets.",
            hint="Set DJANGO_SECRET_KEY to a random value of at least 50 characters.",
            id="realtime_project.E001"))
    else:
        problem = secret_key_problem(settings.SECRET_KEY)
        if problem:
            errors.append(checks.Error(
                f"DJANGO_SECRET_KEY {problem}: sessions and JWTs signed with it can be forged.",
                hint="Set DJANGO_SECRET_KEY to a random value of at least 50 characters.",
                id="realtime_project.E002"))
    if "*" in settings.HUB.get("ALLOWED_ORIGINS", ()):
        errors.append(checks.Warning(
            "HUB_ALLOWED_ORIGINS contains '*': any web page may open WebSockets with its "
            "visitors' session cookies (cross-site WebSocket hijacking).",
            hint="List the origins that serve pages using the hub, or leave it empty.",
            id="realtime_project.W001"))
    return errors
