"""/healthz and /readyz (PROTOCOL.md section 5)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from ephemchat import runtime


async def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process runs."""
    return JsonResponse({"status": "ok"})


async def readyz(request: HttpRequest) -> JsonResponse:
    """200 when Kafka answers and this gateway's bridge runs; 503 otherwise."""
    gateway = runtime.current_gateway()
    if gateway is None or not gateway.started:
        return JsonResponse({"status": "starting", "kafka": "unknown", "bridge": "stopped"}, status=503)
    ready = await gateway.is_ready()
    bridge = gateway.bridge
    body = {
        "status": "ready" if ready else "unavailable",
        "bridge": "running" if bridge is not None and bridge.running else "stopped",
        "partitions_read": bridge.assigned_partitions() if bridge is not None else [],
        "local_rooms": len(bridge.local_rooms()) if bridge is not None else 0,
    }
    return JsonResponse(body, status=200 if ready else 503)
