"""Cluster stats over HTTP: public room figures for the room browser, and the staff-only
live metrics page in the admin. Figures come from kafka_bridge.stats (every gateway's
snapshot, read from Kafka), so any gateway answers for the whole cluster."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from ephemchat import runtime
from rooms.models import Room


def _cluster() -> dict[str, Any] | None:
    gateway = runtime.current_gateway()
    if gateway is None or gateway.stats is None:
        return None
    return gateway.stats.view()


def rooms_stats(request: HttpRequest) -> JsonResponse:
    """{"rooms": {room: {"members", "rate"}}, "gateways": n} for the listed rooms only:
    unlisted rooms are not to be found through their figures."""
    cluster = _cluster()
    if cluster is None:  # not known yet (warming up): the page shows dashes
        return JsonResponse({"rooms": None, "gateways": None})
    listed = set(Room.objects.listed().filter(pk__in=list(cluster["rooms"])).values_list("pk", flat=True))
    rooms = {room: figures for room, figures in cluster["rooms"].items() if room in listed}
    return JsonResponse({"rooms": rooms, "gateways": cluster["count"]})


@staff_member_required
def admin_metrics(request: HttpRequest) -> HttpResponse:
    context = {**admin.site.each_context(request), "title": "Live metrics"}
    return render(request, "admin/ephemchat_metrics.html", context)


@staff_member_required
def admin_metrics_data(request: HttpRequest) -> JsonResponse:
    cluster = _cluster()
    if cluster is None:
        return JsonResponse({"error": "stats are not available on this gateway yet"}, status=503)
    return JsonResponse(cluster)
