"""Issue 15, site logins: LDAP (django-auth-ldap) end to end against a real, private slapd
(python-ldap's ``slapdtest`` starts one on a free port with its own data) and a real daphne.

alice types her directory name and password into the hub's login form; the hub binds as its
service DN, finds ``cn=alice.smith``, checks her password with a bind as her entry, creates
the account on first login and takes her Slurm user from the entry's ``uid``. The attacker
tries her name with a wrong password, and a name the directory does not know.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile

import pytest
import requests
import slapdtest  # python-ldap's own test server
from asgiref.sync import sync_to_async

from tests.wsutil import connected


class Directory(slapdtest.SlapdObject):
    openldap_schema_files = ("core.ldif", "cosine.ldif", "inetorgperson.ldif")


PEOPLE = "ou=people,{suffix}"
ALICE_PASSWORD = "alice-directory-password"


@pytest.fixture
def directory():
    rundir = tempfile.mkdtemp(prefix="hub-slapd-")
    Directory.TMPDIR = rundir
    server = Directory()
    server.start()
    suffix = server.suffix
    server.ldapadd("\n".join([
        f"dn: {suffix}", "objectClass: dcObject", "objectClass: organization", "dc: slapd-test",
        "o: test", "",
        f"dn: {PEOPLE.format(suffix=suffix)}", "objectClass: organizationalUnit", "ou: people", "",
        f"dn: cn=alice.smith,{PEOPLE.format(suffix=suffix)}", "objectClass: inetOrgPerson",
        "cn: alice.smith", "sn: Smith", "givenName: Alice", "mail: alice@example.edu", "uid: asmith",
        f"userPassword: {ALICE_PASSWORD}", ""]) + "\n")
    yield server
    server.stop()
    shutil.rmtree(rundir, ignore_errors=True)


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


def ldap_env(server) -> dict[str, str]:
    return {"HUB_LDAP_SERVER_URI": server.ldap_uri, "HUB_LDAP_BIND_DN": server.root_dn,
            "HUB_LDAP_BIND_PASSWORD": server.root_pw,
            "HUB_LDAP_USER_SEARCH_BASE": PEOPLE.format(suffix=server.suffix),
            "HUB_LDAP_USER_FILTER": "(cn=%(user)s)", "HUB_LDAP_SLURM_USER_ATTR": "uid"}


def log_in(hub_url: str, username: str, password: str) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    form = browser.get(f"{hub_url}/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    answer = browser.post(f"{hub_url}/accounts/login/", timeout=30, allow_redirects=False,
                          data={"username": username, "password": password, "csrfmiddlewaretoken": token},
                          headers={"Referer": f"{hub_url}/accounts/login/"})
    return browser, answer


@sync_to_async
def account(username: str):
    from django.contrib.auth import get_user_model

    from hub.identity import slurm_user_for

    user = get_user_model().objects.filter(username=username).first()
    return None if user is None else (user.email, user.first_name, slurm_user_for(user))


@pytest.mark.django_db(transaction=True)
async def test_ldap_login_creates_the_account_with_its_slurm_user(hub_server, directory):
    server = hub_server(env=ldap_env(directory))

    _, wrong = await asyncio.to_thread(log_in, server.url, "alice.smith", "guess")
    assert wrong.status_code == 200 and "sessionid" not in wrong.cookies  # the form again
    _, unknown = await asyncio.to_thread(log_in, server.url, "mallory", "guess")
    assert unknown.status_code == 200
    assert await account("alice.smith") is None and await account("mallory") is None

    browser, answer = await asyncio.to_thread(log_in, server.url, "alice.smith", ALICE_PASSWORD)
    assert answer.status_code == 302 and answer.headers["Location"] == "/", answer.text[:500]
    assert await account("alice.smith") == ("alice@example.edu", "Alice", "asmith")
    ws, hello = await connected(f"{server.ws_url}/ws/",
                                additional_headers={"Cookie": f"sessionid={browser.cookies['sessionid']}"})
    assert hello["user"] == "alice.smith"
    await ws.close()
