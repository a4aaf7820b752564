from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """The project itself as an app, only so its system checks register at start-up."""

    name = "realtime_project"
    label = "realtime_project"

    def ready(self) -> None:
        from realtime_project import checks  # noqa: F401  registers the checks
