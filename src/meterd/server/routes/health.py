"""Operations and ingest health: liveness, readiness, Prometheus metrics, ingest status, rejections."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.timeutil import format_ms
from meterd.server.auth import AdminKey, ReadKey, ServiceDep
from meterd.server.routes.events import parse_range
from meterd.server.wire import rejection_json

router = APIRouter()
DAY_MS = 86_400_000


@router.get("/healthz", tags=["operations"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"])
async def readyz(meterd: ServiceDep) -> dict[str, str]:
    await meterd.store.ping()
    return {"status": "ready"}


@router.get("/metrics", tags=["operations"])
async def metrics(request: Request, meterd: ServiceDep) -> Response:
    text = request.app.state.metrics.render(meterd.counters.outcomes)
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/v1/ingest/status", tags=["ingest health"])
async def ingest_status(
    key: ReadKey,
    meterd: ServiceDep,
    from_: str | None = Query(default=None, alias="from"),
    to: str | None = None,
    samples: int = Query(default=3, ge=0, le=20),
) -> dict[str, Any]:
    start, end = parse_range(from_, to)
    end = meterd.clock() + 1 if end is None else end
    start = end - DAY_MS if start is None else start
    stats = await meterd.store.ingest_stats(key.tenant, start, end, samples)
    return {
        "from": format_ms(start),
        "to": format_ms(end),
        "counts": [
            {"meter": m, "surface": s, "outcome": o, "count": n} for (m, s, o), n in sorted(stats.counts.items())
        ],
        "rejections": [
            {"surface": s, "message": msg, "count": n, "samples": [rejection_json(r) for r in rs]}
            for s, msg, n, rs in stats.rejection_groups
        ],
    }


@router.get("/v1/rejections", tags=["ingest health"])
async def list_rejections(
    key: ReadKey,
    meterd: ServiceDep,
    surface: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    cursor: str | None = Query(default=None, pattern=r"^\d{1,19}$"),
) -> dict[str, Any]:
    page = await meterd.store.list_rejections(key.tenant, surface, limit, cursor)
    return {"items": [rejection_json(r) for r in page.items], "next_cursor": page.next_cursor}


@router.delete("/v1/rejections/{ids}", tags=["ingest health"])
async def delete_rejections(ids: str, key: AdminKey, meterd: ServiceDep) -> dict[str, int]:
    parts = [p.strip() for p in ids.split(",") if p.strip()]
    if not parts or len(parts) > 10_000 or not all(p.isdigit() and len(p) < 19 for p in parts):
        raise InvalidInput("ids must be a comma-separated list of rejection ids", [FieldError("ids", "invalid")])
    return {"deleted": await meterd.store.delete_rejections(key.tenant, [int(p) for p in parts])}
