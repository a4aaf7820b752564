"""The dashboard at ``/``. Static files (``/static/...``) are WhiteNoise's (settings)."""

from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.dashboard, name="index"),
]
