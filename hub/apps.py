from django.apps import AppConfig


class HubConfig(AppConfig):
    name = "hub"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from importlib import import_module

        from django.conf import settings

        from hub.socket import credentials  # noqa: F401  connects the revocation signal receivers

        # Application message types are opt-in (the chat example too: ``hub.socket.chat``).
        for module in settings.HUB["HANDLER_MODULES"]:
            import_module(module)
