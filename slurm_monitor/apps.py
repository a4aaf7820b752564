from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured


class SlurmMonitorConfig(AppConfig):
    name = "slurm_monitor"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Refuse to start on a cancel command that cannot be used (settings stay plain data;
        this runs under ``django.setup()``, so daphne, manage.py and the monitor all stop)."""
        from django.conf import settings

        from slurm_monitor.cancel import CancelConfigError, parse_command

        value = getattr(settings, "SLURM_MONITOR_CANCEL_COMMAND", None)
        if isinstance(value, str):
            try:
                parse_command(value)
            except CancelConfigError as exc:
                raise ImproperlyConfigured(str(exc)) from None
        from slurm_monitor.clusters import ClusterNameError, validate

        try:
            validate(getattr(settings, "SLURM_MONITOR_CLUSTER", "default"))
        except ClusterNameError as exc:
            raise ImproperlyConfigured(f"SLURM_MONITOR_CLUSTER: {exc}") from None
