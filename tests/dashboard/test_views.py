"""The dashboard's Django side: login, the page's config, the static-file view."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client):
    user = get_user_model().objects.create_user("alice", password="pw-for-tests-only")
    client.force_login(user)
    return user


def page_config(response) -> dict:
    match = re.search(r'<script id="dashboard-config" type="application/json">(.*?)</script>',
                      response.content.decode(), re.S)
    assert match, "the page embeds its config"
    return json.loads(match.group(1))


def test_dashboard_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/")


def test_login_page_renders(client):
    response = client.get("/accounts/login/?next=/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="username"' in body and 'name="password"' in body
    assert 'name="next" value="/"' in body


def test_login_then_dashboard(client):
    get_user_model().objects.create_user("bob", password="pw-for-tests-only")
    response = client.post("/accounts/login/", {"username": "bob", "password": "pw-for-tests-only",
                                                "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_page_config_for_a_user(client, alice):
    response = client.get("/")
    assert response.status_code == 200
    config = page_config(response)
    assert config["user"] == "alice"
    assert config["isStaff"] is False
    assert config["privateJobs"] is False
    assert config["wsUrl"] == "/ws/"
    assert config["api"]["jobs"].startswith("/api/cluster/jobs")
    assert config["api"]["notifications"] == "/api/notifications"
    assert config["csrfToken"]
    body = response.content.decode()
    assert 'src="/static/dashboard/dashboard.js"' in body and 'type="module"' in body


def test_page_config_for_staff(client):
    staff = get_user_model().objects.create_user("root", password="pw-for-tests-only", is_staff=True)
    client.force_login(staff)
    config = page_config(client.get("/"))
    assert config["isStaff"] is True


def test_page_config_says_when_jobs_are_private(client, alice, settings):
    """HUB_PRIVATE_JOBS: the page follows the user's jobs on user:<name> (jobs is staff-only)."""
    settings.HUB = {**settings.HUB, "PRIVATE_JOBS": True}
    assert page_config(client.get("/"))["privateJobs"] is True


def test_config_is_escaped(client):
    """A username cannot break out of the JSON script block."""
    user = get_user_model().objects.create_user("x</script><b>", password="pw-for-tests-only")
    client.force_login(user)
    response = client.get("/")
    assert "x</script><b>" not in response.content.decode()
    assert page_config(response)["user"] == "x</script><b>"


@pytest.mark.parametrize("path", [
    "/static/hub/hub-client.js", "/static/dashboard/dashboard.js", "/static/dashboard/model.js",
])
def test_static_modules_are_served_as_javascript(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert re.fullmatch(r'text/javascript; charset="?utf-8"?', response["Content-Type"])
    assert "max-age=0" in response["Cache-Control"]  # every load revalidates (settings)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert re.search(rb"^(import|export) ", b"".join(response.streaming_content), re.M)


def test_static_css_and_revalidation(client):
    response = client.get("/static/dashboard/dashboard.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    again = client.get("/static/dashboard/dashboard.css",
                       HTTP_IF_MODIFIED_SINCE=response["Last-Modified"])
    assert again.status_code == 304


@pytest.mark.parametrize("path", [
    "/static/nope.js", "/static/../manage.py", "/static/%2e%2e/realtime_project/settings.py",
    "/static/dashboard/../../views.py", "/static//etc/passwd", "/static/dashboard/",
])
def test_static_view_serves_only_app_static_files(client, path):
    assert client.get(path).status_code == 404


def test_the_js_client_and_its_types_are_importable_from_other_origins(client):
    """Integrators load hub-client.js from their own pages (a module script: CORS applies)."""
    for path in ("/static/hub/hub-client.js", "/static/hub/hub-client.d.ts"):
        response = client.get(path, HTTP_ORIGIN="https://portal.example.edu")
        assert response.status_code == 200
        assert response["Access-Control-Allow-Origin"] == "*"


def test_optional_endpoints_are_offered_only_when_routed(client, alice):
    from django.urls import Resolver404, resolve

    alerts = page_config(client.get("/"))["api"].get("alerts")
    try:
        resolve("/api/cluster/alerts")
        routed = True
    except Resolver404:
        routed = False
    assert (alerts is not None) == routed
