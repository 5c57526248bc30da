"""`GET /metrics` (this app's registry, Prometheus text format) and the event-loop lag monitor."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from vapi_calendar.support.metrics import Metrics


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.services.metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def monitor_loop_lag(metrics: Metrics, interval: float = 0.05) -> None:
    """Sleep `interval` again and again; any extra delay is time the loop was blocked."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    while True:
        started = loop.time()
        await asyncio.sleep(interval)
        lag = max(0.0, loop.time() - started - interval)
        metrics.loop_lag_seconds.observe(lag)
        if lag > worst:
            worst = lag
            metrics.loop_lag_max_seconds.set(lag)
