"""The dashboard at ``/`` and the job page at ``/jobs/<id>``. Static files (``/static/...``)
are WhiteNoise's (settings)."""

from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.dashboard, name="index"),
    path("jobs/<str:job_id>", views.job_page, name="job"),
    path("jobs/<str:job_id>/", views.job_page),
]
