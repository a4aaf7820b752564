"""The hub's HTTP routes, included at the site root. Every route answers with and without a
trailing slash (the slash twin is left out of the OpenAPI schema). Unknown paths under the
hub's own API prefixes answer a JSON 404, like everything else here."""

from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from hub.rest import apis, apis_rules, tokens
from hub.rest.apis_errors import ErrorDocumentingGenerator, json_not_found
from hub.ops.metrics import metrics_view


def _both(route: str, view_class, name: str, **initkwargs) -> list:
    return [
        path(route, view_class.as_view(**initkwargs), name=name),
        path(route + "/", view_class.as_view(schema=None, **initkwargs), name=name + "-slash"),
    ]


urlpatterns = [
    *_both("api/broadcast", apis.BroadcastView, "hub-broadcast"),
    *_both("api/health", apis.HealthView, "hub-health"),
    *_both("api/clients", apis.ClientListView, "hub-clients"),
    *_both("api/clients/<str:client_id>", apis.ClientDetailView, "hub-client"),
    *_both("api/channels", apis.ChannelListView, "hub-channels"),
    *_both("api/channels/<str:name>", apis.ChannelDetailView, "hub-channel"),
    *_both("api/notifications", apis.NotificationListView, "hub-notifications"),
    *_both("api/notifications/read", apis.NotificationReadAllView, "hub-notifications-read-all"),
    *_both("api/notifications/rules", apis_rules.NotificationRulesView, "hub-notification-rules"),
    *_both("api/notifications/<str:notification_id>", apis.NotificationDetailView, "hub-notification"),
    *_both("api/notifications/<str:notification_id>/read", apis.NotificationReadView,
           "hub-notification-read"),
    *_both("api/token", tokens.TokenView, "hub-token"),
    *_both("api/token/jwt", tokens.JwtPairView, "hub-token-jwt"),
    *_both("api/token/jwt/refresh", tokens.JwtRefreshView, "hub-token-jwt-refresh"),
    *_both("api/schema", SpectacularAPIView, "hub-schema", generator_class=ErrorDocumentingGenerator),
    *_both("api/docs", SpectacularSwaggerView, "hub-docs", url_name="hub-schema"),
    path("metrics", metrics_view, name="hub-metrics"),
    path("metrics/", metrics_view),
    re_path(r"^api/(?:broadcast|health|clients|channels|notifications|token)(?P<rest>/.*)$", json_not_found),
]
