from django.contrib import admin
from django.urls import include, path

from ephemchat import health, stats_views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("", include("django_prometheus.urls")),  # /metrics
    path("api/rooms/stats", stats_views.rooms_stats, name="rooms-stats"),
    path("admin/metrics/", stats_views.admin_metrics, name="ephemchat-admin-metrics"),
    path("admin/metrics/data", stats_views.admin_metrics_data, name="ephemchat-admin-metrics-data"),
    path("admin/", admin.site.urls),
    path("", include("rooms.urls")),
]
