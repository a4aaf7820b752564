"""Upgrade path for the Slurm monitor's service account (issue 11).

Earlier releases created the account ``slurm-monitor`` (or ``SLURM_MONITOR_SERVICE_USER``)
without a ``ServiceAccount`` marker, and the monitor now refuses any unmarked account of that
name. An account is marked here only on evidence that no squatter can produce: it already
holds ``hub.broadcast`` *directly* (only an administrator or the old monitor could grant it),
has no usable password, and is neither staff nor superuser, exactly as the old monitor left
it. Anything else with that name stays unmarked, and the monitor refuses it at start-up.
"""

import os

from django.conf import settings
from django.contrib.auth.hashers import is_password_usable
from django.db import migrations


def mark_legacy_account(apps, schema_editor):
    app_label, model_name = settings.AUTH_USER_MODEL.split(".")
    user_model = apps.get_model(app_label, model_name)
    ServiceAccount = apps.get_model("hub", "ServiceAccount")
    Permission = apps.get_model("auth", "Permission")
    username = os.environ.get("SLURM_MONITOR_SERVICE_USER", "").strip() or "slurm-monitor"
    user = user_model.objects.filter(username=username).first()
    permission = Permission.objects.filter(content_type__app_label="hub", codename="broadcast").first()
    if user is None or permission is None or ServiceAccount.objects.filter(user=user).exists():
        return
    legacy = (user.user_permissions.filter(pk=permission.pk).exists() and not is_password_usable(user.password)
              and not user.is_staff and not user.is_superuser)
    if legacy:
        ServiceAccount.objects.create(user=user, service="slurm-monitor")


class Migration(migrations.Migration):

    dependencies = [
        ("hub", "0002_notification_scope_service_account"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(mark_legacy_account, migrations.RunPython.noop)]
