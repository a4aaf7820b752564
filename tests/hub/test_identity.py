"""The Slurm-user mapping (issue 15): ``hub.identity.slurm_user_for`` and who may hold a name,
the ``owner`` rule, the profile admin, and the site-login settings (``realtime_project.logins``).
End to end over daphne: tests/security/test_logins_*.py."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from hub.policies import Principal, build_policies
from realtime_project.logins import LOCKOUT_BACKEND, MODEL_BACKEND, REMOTE_USER_MIDDLEWARE, site_logins
from realtime_project.settings import MIDDLEWARE

pytestmark = pytest.mark.django_db


def _user(name: str, staff: bool = False):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(name, password="pw-for-tests-only", is_staff=staff)


def _map(user, slurm_user: str):
    from hub.models import HubProfile

    profile = HubProfile(user=user, slurm_user=slurm_user)
    profile.full_clean()
    profile.save()
    return profile


def test_the_slurm_user_is_the_username_unless_mapped():
    from hub.identity import slurm_user_for

    alice, bob = _user("alice.smith"), _user("bob")
    assert slurm_user_for(bob) == "bob"  # the embedded default: no profile, the same name
    _map(alice, "asmith")
    assert slurm_user_for(alice) == "asmith"
    from django.contrib.auth.models import AnonymousUser

    assert slurm_user_for(AnonymousUser()) == ""


def test_one_slurm_user_one_account():
    from hub.identity import slurm_user_problem

    alice, bob, carol = _user("alice.smith"), _user("bob"), _user("carol")
    _map(alice, "asmith")
    # bob cannot be mapped onto asmith (alice's), nor onto carol (her username is her Slurm user)
    for name in ("asmith", "carol"):
        with pytest.raises(ValidationError) as caught:
            _map(bob, name)
        assert "slurm_user" in caught.value.message_dict
    # a name user:<name> cannot carry is refused too
    assert slurm_user_problem(bob, "bob smith") is not None
    # once carol is mapped elsewhere, her username is free
    _map(carol, "cjones")
    assert slurm_user_problem(bob, "carol") is None
    # alice's username is free while she is asmith; once bob holds it, unmapping her is refused
    from hub.models import HubProfile

    _map(bob, "alice.smith")
    profile = HubProfile.objects.get(user=alice)
    profile.slurm_user = ""
    with pytest.raises(ValidationError):
        profile.full_clean()


def test_an_account_created_later_with_a_claimed_name_gets_no_slurm_identity():
    """The explicit mapping wins: the account literally called ``asmith`` does not become a
    second owner of the Slurm user staff gave to alice.smith."""
    from hub.identity import slurm_user_for

    _map(_user("alice.smith"), "asmith")
    late = _user("asmith")
    assert slurm_user_for(late) == ""
    from hub.socket.auth import principal_for

    principal = principal_for(late)
    assert principal.personal_name is None
    policies = build_policies({}, default_history=10)
    assert not policies.resolve("user:asmith").allows("subscribe", principal, "user:asmith")


def test_a_login_hook_cannot_take_another_accounts_slurm_user():
    from hub.identity import set_slurm_user, slurm_user_for

    alice, mallory = _user("alice.smith"), _user("mallory")
    assert set_slurm_user(alice, "asmith", source="test")
    assert not set_slurm_user(mallory, "asmith", source="test")
    assert slurm_user_for(mallory) == "mallory"
    assert not set_slurm_user(alice, "", source="test")  # asserting none changes nothing
    assert slurm_user_for(alice) == "asmith"


def test_owner_rule_admits_the_slurm_user_only():
    policies = build_policies({}, default_history=10)
    mapped = Principal("alice.smith", slurm_user="asmith")
    policy = policies.resolve("user:asmith")
    assert policy.allows("subscribe", mapped, "user:asmith")
    assert not policy.allows("subscribe", mapped, "user:alice.smith")  # the username names nothing
    assert not policy.allows("subscribe", Principal("bob"), "user:asmith")
    assert policy.allows("subscribe", Principal("asmith"), "user:asmith")  # unmapped: the username
    assert policy.allows("subscribe", Principal("root", is_staff=True), "user:asmith")


def test_only_staff_edit_the_mapping_in_admin(client):
    from hub.identity import slurm_user_for
    from hub.models import HubProfile

    alice = _user("alice.smith")
    client.force_login(alice)
    page = client.get("/admin/hub/hubprofile/add/")
    assert page.status_code == 302 and "/admin/login/" in page["Location"]  # not staff: no admin
    assert not HubProfile.objects.exists()

    admin = _user("root", staff=True)
    admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    assert client.get("/admin/hub/hubprofile/").status_code == 200
    added = client.post("/admin/hub/hubprofile/add/", {"user": alice.pk, "slurm_user": "asmith"})
    assert added.status_code == 302, added.content[:2000]
    assert slurm_user_for(alice) == "asmith"
    # the user's own admin page carries the mapping inline
    assert b"Slurm user" in client.get(f"/admin/auth/user/{alice.pk}/change/").content
    bob = _user("bob")
    refused = client.post("/admin/hub/hubprofile/add/", {"user": bob.pk, "slurm_user": "asmith"})
    assert refused.status_code == 200 and b"already mapped" in refused.content


def test_page_config_and_private_jobs_scope_use_the_slurm_user(rf, monkeypatch):
    from dashboard.views import build_page_config
    from slurm_monitor.apis import job_owner_scope

    alice = _user("alice.smith")
    _map(alice, "asmith")
    request = rf.get("/")
    request.user = alice
    assert build_page_config(request)["user"] == "asmith"
    monkeypatch.setattr("hub.conf.private_jobs", lambda: True)
    assert job_owner_scope(alice) == "asmith"


# --- settings (realtime_project.logins) ----------------------------------------------------

def test_no_site_login_by_default():
    out = site_logins({}, MIDDLEWARE)
    assert out["AUTHENTICATION_BACKENDS"] == [LOCKOUT_BACKEND, MODEL_BACKEND]
    assert out["MIDDLEWARE"] == MIDDLEWARE and out["HUB_SITE_LOGINS"] == []
    assert out["LOGIN_URL"] == "/accounts/login/"


def test_remote_user_settings():
    out = site_logins({"HUB_REMOTE_USER_HEADER": "HTTP_X_REMOTE_USER",
                       "HUB_REMOTE_SLURM_USER_HEADER": "HTTP_X_REMOTE_SLURM_USER"}, MIDDLEWARE)
    assert out["AUTHENTICATION_BACKENDS"][0] == LOCKOUT_BACKEND  # the lockout still refuses first
    middleware = out["MIDDLEWARE"]
    auth = middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")
    assert middleware[auth + 1] == REMOTE_USER_MIDDLEWARE
    assert out["HUB_REMOTE_USER_HEADER"] == "HTTP_X_REMOTE_USER"


@pytest.mark.parametrize("env, named", [
    ({"HUB_REMOTE_USER_HEADER": "X-Remote-User"}, "HUB_REMOTE_USER_HEADER"),
    ({"HUB_REMOTE_SLURM_USER_HEADER": "HTTP_X_SLURM"}, "HUB_REMOTE_SLURM_USER_HEADER"),
    ({"HUB_OIDC_CLIENT_ID": "hub"}, "HUB_OIDC_CLIENT_SECRET"),
    ({"HUB_OIDC_CLIENT_ID": "hub", "HUB_OIDC_CLIENT_SECRET": "s"}, "HUB_OIDC_AUTHORIZATION_ENDPOINT"),
    ({"HUB_LDAP_SERVER_URI": "ldap://ldap.example.edu"}, "HUB_LDAP_USER_SEARCH_BASE"),
    ({"HUB_LDAP_SERVER_URI": "http://ldap.example.edu"}, "HUB_LDAP_SERVER_URI"),
])
def test_bad_site_login_settings_stop_start_up_naming_the_variable(env, named):
    with pytest.raises(ImproperlyConfigured, match=named):
        site_logins(env, MIDDLEWARE)


def test_ldap_and_oidc_settings():
    out = site_logins({
        "HUB_LDAP_SERVER_URI": "ldaps://ldap.example.edu", "HUB_LDAP_USER_SEARCH_BASE": "ou=people,dc=example,dc=edu",
        "HUB_LDAP_SLURM_USER_ATTR": "uid",
        "HUB_OIDC_CLIENT_ID": "hub", "HUB_OIDC_CLIENT_SECRET": "s3cret",
        **{f"HUB_OIDC_{e}_ENDPOINT": f"https://idp.example.edu/{e.lower()}"
           for e in ("AUTHORIZATION", "TOKEN", "USER", "JWKS")}}, MIDDLEWARE)
    assert out["AUTHENTICATION_BACKENDS"] == [
        LOCKOUT_BACKEND, "realtime_project.login_ldap.HubLDAPBackend",
        "realtime_project.login_oidc.HubOIDCBackend", MODEL_BACKEND]
    assert out["AUTH_LDAP_USER_SEARCH"].filterstr == "(uid=%(user)s)"
    assert out["OIDC_OP_JWKS_ENDPOINT"] == "https://idp.example.edu/jwks"
    assert out["OIDC_RP_SIGN_ALGO"] == "RS256" and out["HUB_OIDC_USERNAME_CLAIM"] == "preferred_username"
