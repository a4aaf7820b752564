from django.apps import AppConfig


class HubConfig(AppConfig):
    name = "hub"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from importlib import import_module

        from django.conf import settings

        from hub import chat  # noqa: F401  registers the chat_message example type

        for module in settings.HUB["HANDLER_MODULES"]:
            import_module(module)
