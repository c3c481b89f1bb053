"""Ingest health: outcomes by surface over time, rejections grouped by error with samples, clearing them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from meterd.core.errors import Forbidden, InvalidInput
from meterd.core.ranges import DAY_MS, HOUR_MS
from meterd.core.windows import MINUTE_MS
from meterd.service import Meterd
from meterd.service.dashboard import outcome_timeline, rejections_in_group
from meterd.service.ui_sessions import Session
from meterd.surfaces.ui.render import page
from meterd.surfaces.ui.security import HEADERS, checked_form, current_session, root

router = APIRouter()
SessionDep = Annotated[Session, Depends(current_session)]
# range name -> (span, bucket) of the outcome chart
RANGES: dict[str, tuple[int, int]] = {
    "1h": (HOUR_MS, 5 * MINUTE_MS),
    "24h": (DAY_MS, HOUR_MS),
    "7d": (7 * DAY_MS, 6 * HOUR_MS),
}


def span(now: int, name: str) -> tuple[int, int, int]:
    """[start, end) of the named range, ending at the end of the current bucket, and the bucket size."""
    length, step = RANGES[name]
    end = (now // step + 1) * step
    return end - length, end, step


@router.get("/ingest")
async def ingest_page(request: Request, session: SessionDep) -> Response:
    meterd: Meterd = request.app.state.meterd
    name = request.query_params.get("range", "24h")
    name = name if name in RANGES else "24h"
    start, end, step = span(meterd.clock(), name)
    timeline = await outcome_timeline(meterd, session.tenant, start, end, step)
    stats = await meterd.store.ingest_stats(session.tenant, start, end, samples=3)
    surfaces: dict[str, dict[str, int]] = {}
    for (_, surface, outcome), n in stats.counts.items():
        row = surfaces.setdefault(surface, dict.fromkeys(("accepted", "duplicate", "conflict", "rejected"), 0))
        row[outcome] = row.get(outcome, 0) + n
    chart: dict[str, Any] = {
        "label": "Ingest outcomes by surface",
        "time_zone": "UTC",
        "points": {
            "x": [a / 1000 for a, _ in timeline.buckets],
            "series": [{"label": f"{s} · {o}", "values": v} for (s, o), v in timeline.series.items()],
        },
    }
    context = {
        "range": name,
        "ranges": tuple(RANGES),
        "start": start,
        "end": end,
        "surfaces": dict(sorted(surfaces.items())),
        "groups": stats.rejection_groups,
        "chart": chart,
        "cleared": request.query_params.get("cleared"),
    }
    return page(request, "ingest.html", context, session)


def _int(value: object, name: str) -> int:
    if not isinstance(value, str) or not value.isdigit() or len(value) > 18:
        raise InvalidInput(f"{name} is invalid")
    return int(value)


@router.post("/ingest/clear")
async def clear(request: Request, session: SessionDep) -> Response:
    """Delete rejected records: the chosen samples, or every record of one error group in the range."""
    form = await checked_form(request, session)
    if not session.allows_admin:
        raise Forbidden("Clearing rejected records needs an admin key (as DELETE /v1/rejections does).")
    meterd: Meterd = request.app.state.meterd
    if form.get("action") == "selected":
        ids = [_int(v, "id") for v in form.getlist("ids")]
    else:
        surface, message = form.get("surface"), form.get("message")
        if not isinstance(surface, str) or not isinstance(message, str):
            raise InvalidInput("the error group is missing")
        start, end = _int(form.get("from"), "from"), _int(form.get("to"), "to")
        found = await rejections_in_group(meterd, session.tenant, surface, message, start, end)
        ids = [r.id for r in found]
    deleted = await meterd.store.delete_rejections(session.tenant, ids) if ids else 0
    name = form.get("range") if form.get("range") in RANGES else "24h"
    return RedirectResponse(f"{root(request).rstrip('/')}/ingest?range={name}&cleared={deleted}", 303, HEADERS)

