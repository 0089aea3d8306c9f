"""/healthz and /readyz (PROTOCOL.md section 5)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from ephemchat import runtime


async def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process runs."""
    return JsonResponse({"status": "ok"})


async def readyz(request: HttpRequest) -> JsonResponse:
    """200 when Kafka answers and this gateway's bridge runs; 503 otherwise.

    Under plain `daphne`, nothing starts the Kafka side before the first connection; a
    readiness probe is such a first contact, so it starts it too.
    """
    try:
        gateway = await runtime.started_backend()
    except Exception as exc:
        return JsonResponse({"status": "unavailable", "kafka": "unreachable", "detail": str(exc)}, status=503)
    kafka = await gateway.kafka_reachable()
    bridge = gateway.bridge
    bridge_running = bridge is not None and bridge.running
    ready = kafka and bridge_running
    body = {
        "status": "ready" if ready else "unavailable",
        "kafka": "reachable" if kafka else "unreachable",
        "bridge": "running" if bridge_running else "stopped",
        "partitions_read": bridge.assigned_partitions() if bridge is not None else [],
        "local_rooms": len(bridge.local_rooms()) if bridge is not None else 0,
    }
    return JsonResponse(body, status=200 if ready else 503)
