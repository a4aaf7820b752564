from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


def check_settings(settings) -> None:
    """Validate the settings that only the hub can judge; raise ImproperlyConfigured naming the
    variable. ``settings.py`` stays plain data (it imports nothing from the hub), so these run
    here, from ``ready()``: under ``django.setup()``, which daphne (``python -m hub.server`` and
    ``realtime_project.asgi``), every ``manage.py`` command and the tests all call before
    serving anything. Django's system checks would not do: daphne never runs them.

    - ``DJANGO_CSRF_TRUSTED_ORIGINS`` and ``HUB_ALLOWED_ORIGINS`` (except ``*``): full origins,
      as the handshake's Origin check compares them (``hub.socket.origin``);
    - ``HUB_CHANNELS``: policies that build (``hub.policies``), not an error at the first
      subscribe.
    """
    from hub.policies import PolicyError, build_policies
    from hub.socket.origin import origin_entry_problem

    for name, entries in (("DJANGO_CSRF_TRUSTED_ORIGINS", settings.CSRF_TRUSTED_ORIGINS),
                          ("HUB_ALLOWED_ORIGINS", settings.HUB["ALLOWED_ORIGINS"])):
        for entry in entries:
            problem = None if (entry == "*" and name == "HUB_ALLOWED_ORIGINS") else origin_entry_problem(entry)
            if problem:
                raise ImproperlyConfigured(f"{name}: {entry!r} {problem}")
    try:
        build_policies(settings.HUB["CHANNELS"], default_history=settings.HUB["HISTORY_SIZE"])
    except PolicyError as exc:
        raise ImproperlyConfigured(f"HUB_CHANNELS: {exc}") from None


class HubConfig(AppConfig):
    name = "hub"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from importlib import import_module

        from django.conf import settings

        check_settings(settings)

        from hub.socket import credentials  # noqa: F401  connects the revocation signal receivers

        # Application message types are opt-in (the chat example too: ``hub.socket.chat``).
        for module in settings.HUB["HANDLER_MODULES"]:
            import_module(module)
