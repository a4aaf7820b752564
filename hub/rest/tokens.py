"""Token endpoints (PROTOCOL.md section 6), with DRF's and simplejwt's own views:

    POST /api/token              {"username", "password"} -> {"token": "<DRF token>"}
    POST /api/token/jwt          {"username", "password"} -> {"access", "refresh"}
    POST /api/token/jwt/refresh  {"refresh"}              -> {"access"}

JSON bodies only, the hub's JSON errors (a wrong password answers 400 from DRF's view and 401
from simplejwt's, as each library documents), and the hub's REST throttle.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import JSONParser
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from hub.rest.permissions import HubApiThrottle


class TokenView(ObtainAuthToken):
    parser_classes = [JSONParser]
    throttle_classes = [HubApiThrottle]


class JwtNotIssued(exceptions.APIException):
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = ("this hub verifies JWTs from its identity provider (HUB_JWT_VERIFYING_KEY) "
                      "but does not issue them: get one from the provider")
    default_code = "jwt_not_issued"


class _IssuingJwtView:
    """A site that only verifies an identity provider's JWTs has no signing key: answer that
    in JSON instead of letting simplejwt fail on a missing key."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if not settings.SIMPLE_JWT.get("SIGNING_KEY"):
            raise JwtNotIssued()


class JwtPairView(_IssuingJwtView, TokenObtainPairView):
    parser_classes = [JSONParser]
    throttle_classes = [HubApiThrottle]


class JwtRefreshView(_IssuingJwtView, TokenRefreshView):
    parser_classes = [JSONParser]
    throttle_classes = [HubApiThrottle]
