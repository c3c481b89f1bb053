"""The native query route: one engine for every question, as JSON or CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Request, Response

from meterd.core.query import QuerySpec, Row
from meterd.core.timeutil import format_ms
from meterd.server.auth import ReadKey, ServiceDep
from meterd.server.schemas import QueryIn
from meterd.server.wire import row_json
from meterd.service.attribution import attributed_query

router = APIRouter(prefix="/v1", tags=["query"])


@router.post("/query", summary="Aggregate usage by meter, window, customer and dimensions")
async def query(body: QueryIn, request: Request, key: ReadKey, meterd: ServiceDep) -> Any:
    spec = body.spec()
    if body.attribute_to_owner:
        rows = await attributed_query(meterd, key.tenant, spec)
    else:
        rows = await meterd.query(key.tenant, spec)
    if "text/csv" in request.headers.get("accept", ""):
        return Response(rows_csv(spec, rows), media_type="text/csv; charset=utf-8")
    return {
        "from": format_ms(spec.start),
        "to": format_ms(spec.end),
        "window": spec.window.value,
        "time_zone": spec.time_zone,
        "rows": [row_json(r) for r in rows],
    }


def rows_csv(spec: QuerySpec, rows: list[Row]) -> str:
    """Rows as CSV: meter, start, end, one column per group key, value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["meter", "start", "end", *spec.group_by, "value"])
    for row in rows:
        labels = ["" if row.group.get(k) is None else row.group[k] for k in spec.group_by]
        value = "" if row.value is None else repr(row.value)
        writer.writerow([row.meter, format_ms(row.start), format_ms(row.end), *labels, value])
    return out.getvalue()
