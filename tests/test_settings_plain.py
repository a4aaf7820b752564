"""Issue 12: ``realtime_project/settings.py`` is plain data; the config layer never points up
into an app. What only the hub can judge (origins, channel policies) the hub app validates at
start-up (``hub.apps.check_settings``, from ``HubConfig.ready()``), and a bad value still
stops every way of starting: daphne (ours and the stock CLI, which run no system checks) and
``manage.py``."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured

from hub.apps import check_settings
from tests.conftest import ROOT

APPS = ("hub", "dashboard", "slurm_monitor")
STRONG = "x" * 10 + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"


def test_settings_py_imports_nothing_from_an_app():
    tree = ast.parse((ROOT / "realtime_project" / "settings.py").read_text())
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
    assert [name for name in imported if name.split(".")[0] in APPS] == []


def test_loading_the_settings_loads_no_app_module():
    """Not even through a project module settings.py imports (logins, security, env)."""
    script = ("import sys, realtime_project.settings\n"
              f"print(sorted(m for m in sys.modules if m.split('.')[0] in {APPS!r}))\n")
    env = {**os.environ, "DJANGO_SECRET_KEY": STRONG}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def fake_settings(csrf=(), allowed=(), channels=None) -> SimpleNamespace:
    return SimpleNamespace(CSRF_TRUSTED_ORIGINS=list(csrf),
                           HUB={"ALLOWED_ORIGINS": list(allowed), "CHANNELS": channels or {},
                                "HISTORY_SIZE": 100})


def test_the_hub_accepts_good_settings():
    check_settings(fake_settings(csrf=["https://*.example.edu"], allowed=["*", "http://127.0.0.1:8888"],
                                 channels={"chat.*": {"subscribe": "authenticated"}}))


@pytest.mark.parametrize("settings, message", [
    (fake_settings(csrf=["hub.example.edu"]), "DJANGO_CSRF_TRUSTED_ORIGINS: 'hub.example.edu' is not an origin"),
    (fake_settings(csrf=["*"]), "DJANGO_CSRF_TRUSTED_ORIGINS: '*'"),  # "*" means any only in HUB_ALLOWED_ORIGINS
    (fake_settings(allowed=[".example.edu"]), "HUB_ALLOWED_ORIGINS: '.example.edu' is not an origin"),
    (fake_settings(channels={"x": {"subscribe": "everyone"}}), "HUB_CHANNELS: "),
])
def test_the_hub_refuses_bad_settings_naming_the_variable(settings, message):
    with pytest.raises(ImproperlyConfigured) as raised:
        check_settings(settings)
    assert str(raised.value).startswith(message)


@pytest.mark.e2e
@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "hub.server", "-p", "1"],
    [sys.executable, "-m", "daphne", "-p", "1", "realtime_project.asgi:application"],
], ids=["hub.server", "stock-daphne"])
@pytest.mark.parametrize("name, value, message", [
    ("HUB_ALLOWED_ORIGINS", "hub.example.edu", "HUB_ALLOWED_ORIGINS: 'hub.example.edu' is not an origin"),
    ("DJANGO_CSRF_TRUSTED_ORIGINS", "hub.example.edu",
     "DJANGO_CSRF_TRUSTED_ORIGINS: 'hub.example.edu' is not an origin"),
    ("HUB_CHANNELS", '{"x": {"subscribe": "everyone"}}', "HUB_CHANNELS: "),
])
def test_daphne_refuses_to_start_on_what_the_hub_validates(command, name, value, message):
    """Port 1 cannot be bound: only the settings error can name the variable in stderr."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "realtime_project.settings", "DJANGO_SECRET_KEY": STRONG,
           name: value}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr, result.stderr[-2000:]
