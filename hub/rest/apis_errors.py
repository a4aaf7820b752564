"""DRF exception handler (settings ``EXCEPTION_HANDLER``): every error is JSON naming the
problem, never an HTML page:

    {"code": "invalid", "message": "channel: This field is required.",
     "fields": {"channel": ["This field is required."]}}

``code`` is machine-readable (DRF's codes, or the hub's: ``invalid_channel``,
``unknown_channel``, ``invalid_message``, ``hub_unavailable``, ``payload_too_large``);
``fields`` (validation errors only) maps a dotted field path to its messages. Hub errors
become: PublishError -> 400, HubUnavailable or a database outage -> 503, a request body over
Django's upload limit -> 413. Anything unexpected is logged with its traceback and answered
500 ``internal_error`` in the same shape.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.generators import SchemaGenerator
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from hub.engine.errors import HubUnavailable, PublishError

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "request body too large"
    default_code = "payload_too_large"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "a backing service is unavailable"
    default_code = "hub_unavailable"


class FieldError(exceptions.ValidationError):
    """A 400 naming one field, with a hub error code (e.g. ``invalid_channel``)."""

    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        super().__init__({field: [message]}, code=code)
        self.hub_code = code


def publish_error(exc: PublishError, channel_field: str) -> FieldError:
    """The 400 for a refused publication; ``channel_field`` is the request field that named
    the channel (``channel`` or ``user``)."""
    field = "message.type" if exc.code == "invalid_message" else channel_field
    return FieldError(field, exc.message, code=exc.code)


def flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"a.b": [messages]}``; top level is non_field_errors."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(detail, list) and all(not isinstance(v, (dict, list)) for v in detail):
        out[prefix or "non_field_errors"] = [str(v) for v in detail]
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            out.update(flatten(value, f"{prefix}[{index}]"))
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(str(exc) or None)
    if isinstance(exc, HubUnavailable):
        return ServiceUnavailable(f"{exc.service} unavailable")
    if isinstance(exc, (OperationalError, InterfaceError)):
        return ServiceUnavailable("database unavailable")
    if isinstance(exc, PublishError):
        return FieldError("channel", exc.message, code=exc.code)
    return exc


def _body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten(exc.detail)
        first_field, messages = next(iter(fields.items()), ("non_field_errors", ["invalid input"]))
        message = messages[0] if first_field == "non_field_errors" else f"{first_field}: {messages[0]}"
        code = getattr(exc, "hub_code", "invalid")
        return {"code": code, "message": message, "fields": fields}
    detail = exc.detail
    if isinstance(detail, dict):  # e.g. simplejwt's {"detail", "code", "messages"}: one line
        code = detail.get("code") or exc.default_code
        return {"code": str(code), "message": str(detail.get("detail") or exc.default_detail)}
    shown: object = detail
    if isinstance(detail, list):
        shown = detail[0] if detail else exc.default_detail
    code = getattr(shown, "code", None) or exc.default_code
    return {"code": str(code), "message": str(shown)}


def json_exception_handler(exc: Exception, context: dict) -> Response:
    exc = _translate(exc)
    response = exception_handler(exc, context)
    # DRF answers APIExceptions only (_translate made Django's 404/403 into theirs).
    if response is None or not isinstance(exc, exceptions.APIException):
        if isinstance(exc, DatabaseError):
            logger.exception("database error in %s", context.get("view"))
        else:
            logger.exception("unhandled error in %s", context.get("view"))
        set_rollback()
        return Response({"code": "internal_error", "message": "internal error"},
                        status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    response.data = _body(exc)
    return response


# --- the error shape in the OpenAPI schema ----------------------------------------------------

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "machine-readable error code"},
        "message": {"type": "string", "description": "what is wrong, naming the field when there is one"},
        "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                   "description": "validation errors by dotted field path"},
    },
    "required": ["code", "message"],
}
ERROR_STATUS_TEXT = {
    "400": "invalid input (the body names the field)", "401": "no or bad credentials",
    "403": "not allowed", "404": "no such object", "405": "method not allowed",
    "406": "cannot render the accepted media type", "413": "request too large",
    "415": "unsupported request media type", "429": "rate limited",
    "503": "a backing service (Redis, the database) is down",
}
_HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


class ErrorDocumentingGenerator(SchemaGenerator):
    """Documents, on EVERY operation of the site (the hub's and other apps'), the JSON error
    answers this handler can give: an operation documents its own errors where it knows
    better; this fills in the rest, so the whole schema tells the truth about errors."""

    def get_schema(self, request=None, public=False):
        schema = super().get_schema(request=request, public=public)
        schema.setdefault("components", {}).setdefault("schemas", {}).setdefault("Error", ERROR_SCHEMA)
        ref = {"$ref": "#/components/schemas/Error"}
        for item in schema.get("paths", {}).values():
            for method, operation in item.items():
                if method not in _HTTP_METHODS:
                    continue
                responses = operation.setdefault("responses", {})
                for code, text in ERROR_STATUS_TEXT.items():
                    responses.setdefault(code, {"description": text,
                                                "content": {"application/json": {"schema": ref}}})
        return schema


# --- outside DRF: unknown paths and crashes under /api/ (realtime_project/urls.py) ----------

API_PREFIXES = ("/api/", "/api", "/metrics")


def _is_api(request) -> bool:
    return request.path == "/api" or request.path.startswith(API_PREFIXES)


@csrf_exempt  # a POST to an unknown path is a 404, not an HTML CSRF page
def json_not_found(request, *args, **kwargs) -> JsonResponse:
    """The 404 of any path under /api/ that no route serves, whatever the method."""
    return JsonResponse({"code": "not_found", "message": f"no such path {request.path!r}"}, status=404)


def handler404(request, exception=None):
    """Django's 404 (DEBUG off): JSON under /api/, the usual page elsewhere."""
    if _is_api(request):
        return json_not_found(request)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    """Django's 500 (DEBUG off; the traceback is logged by Django): JSON under /api/."""
    if _is_api(request):
        return JsonResponse({"code": "internal_error", "message": "internal error"}, status=500)
    from django.views.defaults import server_error

    return server_error(request)


def handler400(request, exception=None):
    if _is_api(request):
        return JsonResponse({"code": "bad_request", "message": "bad request"}, status=400)
    from django.views.defaults import bad_request

    return bad_request(request, exception)


def handler403(request, exception=None):
    if _is_api(request):
        return JsonResponse({"code": "permission_denied", "message": "not allowed"}, status=403)
    from django.views.defaults import permission_denied

    return permission_denied(request, exception)
