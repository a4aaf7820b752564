"""The dashboard at ``/``, and the apps' static files under ``STATIC_URL`` (see views)."""

from django.conf import settings
from django.urls import path, re_path

from dashboard import views

app_name = "dashboard"

_static_prefix = settings.STATIC_URL.strip("/")

urlpatterns = [
    path("", views.dashboard, name="index"),
    re_path(rf"^{_static_prefix}/(?P<path>.+)$", views.static_file, name="static"),
]
