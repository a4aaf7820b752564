"""The OpenAPI schema, its docs page, and a schemathesis run against the served schema.

Schemathesis drives every operation in-process (Django's WSGI handler, the real engine with
the in-process layer, the test database) with schema-conforming and schema-breaking input,
authenticated as a superuser (so every permission passes) and anonymously. No response may be
a 5xx, carry an undocumented status code or content type, or break its documented schema.
Hypothesis is derandomized: the run is the same on every machine.
"""

from __future__ import annotations

import io
import json

import pytest
import schemathesis
import yaml
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from schemathesis.checks import not_a_server_error

EXPECTED_PATHS = {
    "/api/broadcast", "/api/health", "/api/clients", "/api/clients/{client_id}", "/api/channels",
    "/api/channels/{name}", "/api/notifications", "/api/notifications/{notification_id}",
    "/api/notifications/{notification_id}/read", "/api/notifications/read",
    "/api/notifications/rules",
    "/api/token", "/api/token/jwt", "/api/token/jwt/refresh",
}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES_PER_OPERATION = 40


def test_the_hubs_schema_generates_without_warnings_and_validates():
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json",
                 "--urlconf", "hub.urls", "--generator-class", "hub.rest.apis_errors.ErrorDocumentingGenerator",
                 stdout=out)
    schema = json.loads(out.getvalue())
    assert set(schema["paths"]) == EXPECTED_PATHS
    assert schema["paths"]["/api/broadcast"]["post"]["operationId"] == "broadcast"
    for item in schema["paths"].values():
        for operation in item.values():
            assert {"400", "401", "403", "404", "405", "413", "429"} <= set(operation["responses"])


@pytest.mark.django_db
def test_schema_and_docs_are_served():
    client = Client()
    served = client.get("/api/schema")
    assert served.status_code == 200
    assert EXPECTED_PATHS <= set(yaml.safe_load(served.content)["paths"])
    as_json = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert as_json.status_code == 200 and EXPECTED_PATHS <= set(as_json.json()["paths"])
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content and b"/api/schema" in docs.content


def run_operation(operation, mode: GenerationMode, headers: dict, checks: list) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def run(case):
        case.call_and_validate(headers=headers, checks=checks)

    try:
        run()
    except BaseException as exc:
        exc.add_note(f"operation: {operation.method.upper()} {operation.path} ({mode.value})")
        raise


@pytest.fixture
def wsgi_app(db):
    """Django's WSGI handler on the test database: like Django's test client, it must not
    close the connection at the end of each request (that would drop the test database)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(wsgi_app):
    return schemathesis.openapi.from_wsgi("/api/schema", wsgi_app)


@pytest.fixture
def superuser_token(db) -> str:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    root = get_user_model().objects.create_superuser("root", password=None)
    return Token.objects.create(user=root).key


@pytest.fixture(autouse=True)
def _no_throttling(monkeypatch):
    monkeypatch.setenv("HUB_API_RATE_LIMIT", "1000000/s")
    monkeypatch.setenv("HUB_API_HEALTH_RATE_LIMIT", "1000000/s")
    cache.clear()


def operations(schema) -> list:
    """Every operation of the served schema: the hub's and any other app's."""
    found = [result.ok() for result in schema.get_all_operations()]
    assert EXPECTED_PATHS <= {op.path for op in found}
    return found


@pytest.mark.e2e  # minutes of generated requests: the full tier, not the fast one
def test_schemathesis_positive_input_as_superuser(api_schema, superuser_token):
    from hub.notify.notifications import create_notification

    for title in ("one", "two"):
        create_notification("root", "t", title, "")
    for operation in operations(api_schema):
        run_operation(operation, GenerationMode.POSITIVE, {"Authorization": f"Token {superuser_token}"}, CHECKS)


def negatable(operation) -> bool:
    """Has input that schema-breaking data can be generated for (beyond credentials)."""
    return any(len(getattr(operation, part)) for part in ("body", "query", "path_parameters"))


@pytest.mark.e2e  # minutes of generated requests: the full tier, not the fast one
def test_schemathesis_negative_input_as_superuser(api_schema, superuser_token):
    """No 5xx and no schema break anywhere; the hub's own operations must also REJECT
    schema-breaking input with a 4xx (a stricter check than the issue asks of other apps)."""
    for operation in filter(negatable, operations(api_schema)):
        checks = [*CHECKS, negative_data_rejection] if operation.path in EXPECTED_PATHS else CHECKS
        run_operation(operation, GenerationMode.NEGATIVE, {"Authorization": f"Token {superuser_token}"}, checks)


@pytest.mark.e2e  # minutes of generated requests: the full tier, not the fast one
def test_schemathesis_anonymous_and_bad_token(api_schema):
    for operation in operations(api_schema):
        run_operation(operation, GenerationMode.POSITIVE, {}, CHECKS)
        if negatable(operation):
            run_operation(operation, GenerationMode.NEGATIVE, {"Authorization": "Token nope"}, CHECKS)
