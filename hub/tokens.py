"""Token endpoints (PROTOCOL.md section 6), with DRF's and simplejwt's own views:

    POST /api/token              {"username", "password"} -> {"token": "<DRF token>"}
    POST /api/token/jwt          {"username", "password"} -> {"access", "refresh"}
    POST /api/token/jwt/refresh  {"refresh"}              -> {"access"}

JSON bodies only, the hub's JSON errors (a wrong password answers 400 from DRF's view and 401
from simplejwt's, as each library documents), and the hub's REST throttle.
"""

from __future__ import annotations

from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import JSONParser
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from hub.permissions import HubApiThrottle


class TokenView(ObtainAuthToken):
    parser_classes = [JSONParser]
    throttle_classes = [HubApiThrottle]


class JwtPairView(TokenObtainPairView):
    parser_classes = [JSONParser]
    throttle_classes = [HubApiThrottle]


class JwtRefreshView(TokenRefreshView):
    parser_classes = [JSONParser]
    throttle_classes = [HubApiThrottle]
