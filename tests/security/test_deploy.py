"""Issue 11: ``manage.py check --deploy`` is clean with the README's production settings, and
each of those settings is needed (leaving one out is flagged), and the hub's HTTP answers
carry the headers they promise."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT
from tests.security.test_secrets import start_up


def readme_production_env() -> dict[str, str]:
    """The ``VAR=value`` lines of the README's "Production settings" block."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"### Production settings\n.*?```sh\n(.*?)```", text, re.S)
    assert block, "README.md has no 'Production settings' sh block"
    env = {}
    for line in block.group(1).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = value.strip("'\"")
    return env


def production_env() -> dict[str, str]:
    env = readme_production_env()
    assert env["DJANGO_SECRET_KEY"].startswith("$(")  # the README says how to make one
    env["DJANGO_SECRET_KEY"] = "p" * 10 + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
    return env


def test_check_deploy_is_clean_with_the_readmes_production_settings():
    result = start_up(production_env(), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues (0 silenced)" in result.stdout


@pytest.mark.parametrize("leave_out, flagged", [
    ("DJANGO_SECURE_COOKIES", "security.W012"),
    ("DJANGO_SECURE_HSTS_SECONDS", "security.W004"),
    ("DJANGO_SECURE_SSL_REDIRECT", "security.W008"),
    ("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY is not set"),
])
def test_each_production_setting_is_needed(leave_out, flagged):
    env = production_env()
    del env[leave_out]
    result = start_up(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0 and flagged in result.stderr


@pytest.mark.parametrize("name, value", [
    ("DJANGO_SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto"),
    ("DJANGO_SECURE_PROXY_SSL_HEADER", "HTTP_X_FORWARDED_PROTO"),
    ("DJANGO_SECURE_COOKIES", "maybe"),
    ("DJANGO_SECURE_HSTS_SECONDS", "-1"),
    ("HUB_JWT_ACCESS_MINUTES", "soon"),
])
def test_bad_deployment_values_stop_start_up_naming_the_variable(name, value):
    result = start_up({**production_env(), name: value})
    assert result.returncode != 0 and name in result.stderr


def test_star_origins_are_flagged_by_check_deploy():
    result = start_up({**production_env(), "HUB_ALLOWED_ORIGINS": "*"},
                      "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0 and "realtime_project.W001" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_production_headers_and_cookies_from_a_real_daphne(hub_server, make_user):
    env = {k: v for k, v in production_env().items() if k != "DJANGO_SECRET_KEY"}
    env["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1"
    server = hub_server(env)
    # through the TLS proxy: HSTS, no framing, no sniffing; cookies Secure, HttpOnly, Lax
    request = urllib.request.Request(server.url + "/accounts/login/",
                                     headers={"X-Forwarded-Proto": "https"})
    with urllib.request.urlopen(request, timeout=10) as response:
        headers = response.headers
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    cookie = headers["Set-Cookie"]
    assert "csrftoken=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie

    # plain http (the proxy did not say https) is redirected to https
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(server.url + "/accounts/login/", timeout=10)
    assert info.value.code == 301
    assert info.value.headers["Location"] == "https://127.0.0.1:%d/accounts/login/" % server.port
