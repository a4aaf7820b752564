"""The site's routes. Errors under /api/ are JSON whatever raised them (unknown path, a
crash outside DRF); the login forms are wrapped by the failed-login lockout."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from hub.rest.apis_errors import json_not_found
from hub.rest.login_throttle import throttled

urlpatterns = [
    path("admin/login/", throttled(admin.site.login)),
    path("admin/", admin.site.urls),
    path("accounts/login/", throttled(auth_views.LoginView.as_view()), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("hub.urls")),
    path("", include("slurm_monitor.urls")),
    path("", include("dashboard.urls")),
    re_path(r"^api(?:/.*)?$", json_not_found),
]

if "oidc" in getattr(settings, "HUB_SITE_LOGINS", ()):  # realtime_project.logins
    urlpatterns.insert(0, path("oidc/", include("mozilla_django_oidc.urls")))

handler400 = "hub.rest.apis_errors.handler400"
handler403 = "hub.rest.apis_errors.handler403"
handler404 = "hub.rest.apis_errors.handler404"
handler500 = "hub.rest.apis_errors.handler500"
