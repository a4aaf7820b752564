"""Issue 11 point 11: password guessing on the login forms is locked out with exponential
backoff, per username and per address; the lockout holds even for the right password."""

from __future__ import annotations

import asyncio
import re

import pytest
import requests
from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.test import Client

from hub.rest import login_throttle

PASSWORD = "the-right-password-1"
HTTP_TIMEOUT_SECONDS = 10  # a hang guard, not a latency assertion


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast, tests only
    cache.clear()
    monkeypatch.setenv("HUB_LOGIN_MAX_FAILURES", "5")
    monkeypatch.setenv("HUB_LOGIN_LOCKOUT_SECONDS", "30")
    fake = Clock()
    monkeypatch.setattr(login_throttle, "now", fake)
    yield fake
    cache.clear()


@pytest.fixture
def alice(db, clock):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("alice", password=PASSWORD, is_staff=True)  # admin too


def login(path: str, username: str, password: str, address: str = "192.0.2.10"):
    return Client(REMOTE_ADDR=address).post(path, {"username": username, "password": password})


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_six_wrong_passwords_lock_the_account_even_for_the_right_one_until_it_expires(path, alice, clock):
    for _ in range(5):
        assert login(path, "alice", "guess").status_code == 200  # the form again, with an error
    locked = login(path, "alice", "guess-6")
    assert locked.status_code == 429
    assert re.search(r"try again in 30 s", locked.content.decode()) and locked["Retry-After"] == "30"
    assert login(path, "alice", PASSWORD).status_code == 429  # the right password, refused
    assert login(path, "ALICE", PASSWORD, address="198.51.100.7").status_code == 429  # other case, other address
    assert not Client().login(username="alice", password=PASSWORD)  # authenticate() itself refuses

    clock.t += 31
    assert login(path, "alice", PASSWORD).status_code == 302  # logged in


def test_each_further_failure_doubles_the_lockout(alice, clock):
    for _ in range(5):
        login("/accounts/login/", "alice", "guess")
    assert login_throttle.seconds_locked("alice", None) == 30
    clock.t += 31
    login("/accounts/login/", "alice", "guess")
    assert login_throttle.seconds_locked("alice", None) == 60
    clock.t += 61
    login("/accounts/login/", "alice", "guess")
    assert login_throttle.seconds_locked("alice", None) == 120


def test_attempts_during_a_lockout_do_not_extend_it(alice, clock):
    for _ in range(5):
        login("/accounts/login/", "alice", "guess")
    for _ in range(20):
        login("/accounts/login/", "alice", "guess")
        assert Client().login(username="alice", password="guess") is False
    clock.t += 31
    assert login("/accounts/login/", "alice", PASSWORD).status_code == 302


def test_a_success_clears_the_count(alice, clock):
    for _ in range(4):
        login("/accounts/login/", "alice", "guess")
    assert login("/accounts/login/", "alice", PASSWORD).status_code == 302
    for _ in range(4):
        login("/accounts/login/", "alice", "guess")
    assert login("/accounts/login/", "alice", PASSWORD).status_code == 302


def test_one_address_spraying_many_usernames_is_locked_out(alice, clock):
    for n in range(20):  # 4 x HUB_LOGIN_MAX_FAILURES, one guess per made-up name
        assert login("/accounts/login/", f"user{n}", "guess", address="203.0.113.5").status_code == 200
    assert login("/accounts/login/", "alice", PASSWORD, address="203.0.113.5").status_code == 429
    assert login("/accounts/login/", "alice", PASSWORD, address="203.0.113.6").status_code == 302


# --- a real daphne -----------------------------------------------------------------------------

def login_form(base_url: str, username: str, password: str) -> requests.Response:
    session = requests.Session()
    page = session.get(f"{base_url}/accounts/login/", timeout=HTTP_TIMEOUT_SECONDS)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(f"{base_url}/accounts/login/", timeout=HTTP_TIMEOUT_SECONDS, allow_redirects=False,
                        data={"csrfmiddlewaretoken": csrf, "username": username, "password": password})


@pytest.mark.django_db(transaction=True)
async def test_guessing_against_a_real_server(hub_server, make_user):
    server = hub_server({"HUB_LOGIN_MAX_FAILURES": "5", "HUB_LOGIN_LOCKOUT_SECONDS": "1"})
    await sync_to_async(make_user)("alice", password=PASSWORD)
    codes = [(await asyncio.to_thread(login_form, server.url, "alice", f"guess{n}")).status_code
             for n in range(6)]
    assert codes == [200] * 5 + [429]
    refused = await asyncio.to_thread(login_form, server.url, "alice", PASSWORD)
    assert refused.status_code == 429 and "try again in" in refused.text
    for _ in range(50):  # the 1 s lockout ends; the right password then works
        answer = await asyncio.to_thread(login_form, server.url, "alice", PASSWORD)
        if answer.status_code != 429:
            break
        await asyncio.sleep(0.2)
    assert answer.status_code == 302


@pytest.mark.parametrize("name, value", [("HUB_LOGIN_MAX_FAILURES", "0"), ("HUB_LOGIN_MAX_FAILURES", "five"),
                                         ("HUB_LOGIN_LOCKOUT_SECONDS", "0"), ("HUB_LOGIN_LOCKOUT_SECONDS", "-1")])
def test_a_bad_setting_names_the_variable(monkeypatch, name, value):
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        login_throttle.max_failures() if name.endswith("FAILURES") else login_throttle.lockout_seconds()
