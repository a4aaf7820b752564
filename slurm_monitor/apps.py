from django.apps import AppConfig


class SlurmMonitorConfig(AppConfig):
    name = "slurm_monitor"
    default_auto_field = "django.db.models.BigAutoField"
