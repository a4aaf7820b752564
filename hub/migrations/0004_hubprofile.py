"""The Slurm-user mapping (issue 15): one optional profile per user."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("hub", "0003_mark_legacy_monitor_account"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="HubProfile",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("slurm_user", models.CharField(
                    blank=True, default="", max_length=150,
                    help_text="the Slurm user this person is (jobs, user:<name>, notifications); "
                              "blank: the same as the username")),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("user", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE,
                                              related_name="hub_profile",
                                              to=settings.AUTH_USER_MODEL)),
            ],
            options={"verbose_name": "hub profile"},
        ),
        migrations.AddConstraint(
            model_name="hubprofile",
            constraint=models.UniqueConstraint(condition=models.Q(("slurm_user", ""), _negated=True),
                                               fields=("slurm_user",),
                                               name="hub_profile_slurm_user_unique"),
        ),
    ]
