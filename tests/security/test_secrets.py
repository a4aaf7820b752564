"""Issue 11, point 1: no built-in secret; a JWT minted offline is refused everywhere.

The attacker knows the repository: the old built-in key, simplejwt's defaults (HS256,
``user_id``, ``token_type: access``) and the id of the first superuser. They mint tokens on
their own machine and try them on REST and on the WebSocket of a real daphne.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import jwt
import pytest

from tests.conftest import ROOT
from tests.wsutil import connect, connected, expect_close

pytestmark = pytest.mark.django_db(transaction=True)

OLD_KEY = "dev-only-insecure-key-set-DJANGO_SECRET_KEY-in-production"
STRONG = "k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"


def claims(user_id, **extra) -> dict:
    now = int(time.time())
    return {"token_type": "access", "exp": now + 3600, "iat": now, "jti": uuid.uuid4().hex,
            "user_id": str(user_id), **extra}


def start_up(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``manage.py check`` (or ``args``) with exactly the production settings module and ``env``
    over this environment without any secret key."""
    full = {k: v for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "HUB_JWT_"))}
    full.update({"DJANGO_SETTINGS_MODULE": "realtime_project.settings", **env})
    return subprocess.run([sys.executable, "manage.py", *(args or ("check",))], cwd=ROOT,
                          env=full, capture_output=True, text=True, timeout=60)


# --- start-up ---------------------------------------------------------------------------------

@pytest.mark.parametrize("env, why", [
    ({}, "is not set"),
    ({"DJANGO_SECRET_KEY": ""}, "is not set"),
    ({"DJANGO_SECRET_KEY": OLD_KEY}, "old built-in development key"),
    ({"DJANGO_SECRET_KEY": OLD_KEY, "DJANGO_DEBUG": "true"}, "old built-in development key"),
    ({"DJANGO_SECRET_KEY": "django-insecure-" + STRONG}, "django-insecure-"),
    ({"DJANGO_SECRET_KEY": "s3cr3t"}, "shorter than 50"),
    ({"DJANGO_SECRET_KEY": "ab" * 40}, "fewer than 5 different"),
    ({"DJANGO_SECRET_KEY": STRONG, "HUB_JWT_SIGNING_KEY": "short"}, "HUB_JWT_SIGNING_KEY"),
    ({"DJANGO_SECRET_KEY": STRONG, "HUB_JWT_SIGNING_KEY": OLD_KEY}, "HUB_JWT_SIGNING_KEY"),
    ({"DJANGO_SECRET_KEY": STRONG, "HUB_JWT_ALGORITHM": "RS256"}, "HUB_JWT_VERIFYING_KEY"),
    ({"DJANGO_SECRET_KEY": STRONG, "HUB_JWT_ALGORITHM": "none"}, "HUB_JWT_ALGORITHM"),
])
def test_start_up_refuses_a_missing_or_weak_key_naming_the_variable(env, why):
    result = start_up(env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and why in result.stderr
    assert ("HUB_JWT_" if "HUB_JWT" in why else "DJANGO_SECRET_KEY") in result.stderr


def test_a_strong_key_starts():
    result = start_up({"DJANGO_SECRET_KEY": STRONG})
    assert result.returncode == 0, result.stderr


def test_debug_without_a_key_starts_with_a_random_key_that_check_deploy_flags():
    result = start_up({"DJANGO_DEBUG": "true"}, "shell", "-c",
                      "from django.conf import settings; print(settings.SECRET_KEY)")
    assert result.returncode == 0, result.stderr
    first = result.stdout.strip()
    second = start_up({"DJANGO_DEBUG": "true"}, "shell", "-c",
                      "from django.conf import settings; print(settings.SECRET_KEY)").stdout.strip()
    assert len(first) >= 50 and first != second and OLD_KEY not in (first, second)
    deploy = start_up({"DJANGO_DEBUG": "true"}, "check", "--deploy")
    assert deploy.returncode != 0 and "realtime_project.E001" in deploy.stderr
    weak = start_up({"DJANGO_DEBUG": "true", "DJANGO_SECRET_KEY": "s3cr3t"}, "check", "--deploy")
    assert weak.returncode != 0 and "realtime_project.E002" in weak.stderr


def test_the_jwt_key_is_derived_from_the_secret_key_and_is_not_it(settings):
    signing = settings.SIMPLE_JWT["SIGNING_KEY"]
    assert settings.SIMPLE_JWT["ALGORITHM"] == "HS256"
    assert len(signing) >= 32 and signing not in (settings.SECRET_KEY, OLD_KEY)
    assert settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds() == 15 * 60


# --- forged tokens against a real daphne ------------------------------------------------------

def rest_broadcast(base_url: str, token: str) -> int:
    request = urllib.request.Request(
        base_url + "/api/broadcast", method="POST",
        data=json.dumps({"channel": "all", "message": {"type": "owned", "data": {}}}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def refused_everywhere(server, token: str) -> None:
    assert await asyncio.to_thread(rest_broadcast, server.url, token) == 401
    ws = await connect(f"{server.ws_url}/ws/?token={token}")
    assert await expect_close(ws) == 4001
    ws = await connect(f"{server.ws_url}/ws/", additional_headers={"Authorization": f"Bearer {token}"})
    assert await expect_close(ws) == 4001


async def accepted_everywhere(server, token: str, username: str) -> None:
    assert await asyncio.to_thread(rest_broadcast, server.url, token) == 200
    ws, hello = await connected(f"{server.ws_url}/ws/?token={token}")
    assert hello["user"] == username
    await ws.close()


@pytest.fixture
def superuser(transactional_db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("root", "root@example.edu", "pw-for-tests-only")


async def test_a_jwt_minted_with_the_old_built_in_key_is_refused_everywhere(hub_server, superuser):
    from django.conf import settings

    server = await asyncio.to_thread(hub_server)
    for key in (OLD_KEY, settings.SECRET_KEY):  # simplejwt's default was SECRET_KEY itself
        await refused_everywhere(server, jwt.encode(claims(superuser.pk), key, algorithm="HS256"))
    # alg "none": no signature at all
    unsigned = jwt.encode(claims(superuser.pk), None, algorithm="none")
    await refused_everywhere(server, unsigned)
    # The same claims signed with the key this hub was given are accepted: the refusals above
    # are about the key, not about the token's shape.
    good = jwt.encode(claims(superuser.pk), settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    await accepted_everywhere(server, good, "root")


async def test_hub_jwt_signing_key_replaces_the_derived_key(hub_server, superuser):
    from django.conf import settings

    own_key = "jwt-" + STRONG
    server = await asyncio.to_thread(hub_server, {"HUB_JWT_SIGNING_KEY": own_key})
    derived = settings.SIMPLE_JWT["SIGNING_KEY"]
    await refused_everywhere(server, jwt.encode(claims(superuser.pk), derived, algorithm="HS256"))
    await accepted_everywhere(server, jwt.encode(claims(superuser.pk), own_key, algorithm="HS256"),
                              "root")


def _rsa_pair() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


async def test_rs256_with_an_identity_providers_public_key(hub_server, superuser, tmp_path):
    from django.conf import settings

    issuer_private, issuer_public = _rsa_pair()
    attacker_private, _ = _rsa_pair()
    key_file = tmp_path / "issuer.pem"
    key_file.write_text(issuer_public)
    server = await asyncio.to_thread(hub_server, {
        "HUB_JWT_ALGORITHM": "RS256", "HUB_JWT_VERIFYING_KEY": str(key_file),
        "HUB_JWT_ISSUER": "https://idp.example.edu", "HUB_JWT_AUDIENCE": "hub"})
    good = claims(superuser.pk, iss="https://idp.example.edu", aud="hub")

    await accepted_everywhere(server, jwt.encode(good, issuer_private, algorithm="RS256"), "root")
    # another key pair, the wrong issuer or audience, HS256 (with the public key as the HMAC
    # secret: algorithm confusion, or with the hub's derived HS256 key) are all refused
    for token in (
        jwt.encode(good, attacker_private, algorithm="RS256"),
        jwt.encode({**good, "iss": "https://evil.example"}, issuer_private, algorithm="RS256"),
        jwt.encode({**good, "aud": "other"}, issuer_private, algorithm="RS256"),
        jwt.encode(good, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256"),
        _hs256_with_public_key(good, issuer_public),
    ):
        await refused_everywhere(server, token)


def _hs256_with_public_key(payload: dict, public_pem: str) -> str:
    """PyJWT refuses to HMAC with a PEM, so sign by hand, as an attacker would."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(payload).encode())
    signature = hmac.new(public_pem.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


async def test_tokens_of_an_identity_provider_that_names_users_by_username(hub_server, superuser):
    """A provider's access token: no token_type, the user in preferred_username."""
    issuer_private, issuer_public = _rsa_pair()
    server = await asyncio.to_thread(hub_server, {
        "HUB_JWT_ALGORITHM": "RS256", "HUB_JWT_VERIFYING_KEY": issuer_public.replace("\n", "\\n"),
        "HUB_JWT_AUDIENCE": "hub", "HUB_JWT_USER_ID_CLAIM": "preferred_username",
        "HUB_JWT_USER_ID_FIELD": "username"})
    now = int(time.time())
    token = {"exp": now + 300, "iat": now, "jti": uuid.uuid4().hex, "aud": "hub",
             "preferred_username": "root", "sub": "f3a1c2"}
    await accepted_everywhere(server, jwt.encode(token, issuer_private, algorithm="RS256"), "root")
    for forged in ({**token, "preferred_username": "nobody"}, {**token, "exp": now - 60},
                   {**token, "aud": "another-app"}):
        await refused_everywhere(server, jwt.encode(forged, issuer_private, algorithm="RS256"))
