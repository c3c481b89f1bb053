"""The dashboard's data endpoints: the page's charts call ``POST /v1/query`` through here, and CSV downloads.

The native API takes only ``Authorization: Bearer`` keys, so it never needs CSRF defences. The dashboard's
script instead posts the very same query body to ``/ui/api/query`` with the session cookie and the CSRF
header; this hands it, with the session's key, to the same route function that serves ``POST /v1/query``,
so the answer is byte-for-byte the API's.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.responses import Response

from meterd.core.errors import FieldError, InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType
from meterd.server.routes import query as query_route
from meterd.server.schemas import QueryIn
from meterd.service import Meterd
from meterd.service.ui_sessions import Session
from meterd.surfaces.ui.render import page
from meterd.surfaces.ui.security import HEADERS, check_script_call, current_session
from meterd.surfaces.ui.views import parse_view

router = APIRouter()
SessionDep = Annotated[Session, Depends(current_session)]
MAX_QUERY_BYTES = 1024 * 1024


def query_in(raw: bytes) -> QueryIn:
    """Validate a query body exactly as the API does, reporting problems the way the API does."""
    try:
        return QueryIn.model_validate_json(raw)
    except ValidationError as exc:
        errors = [FieldError(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        raise InvalidInput("the request is invalid", errors) from None


@router.post("/api/query")
async def query(request: Request, session: SessionDep) -> Any:
    check_script_call(request, session)
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise UnsupportedMediaType("send the query as application/json")
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > MAX_QUERY_BYTES:
        raise PayloadTooLarge(f"a query may carry at most {MAX_QUERY_BYTES} bytes")
    body = query_in(await request.body())
    meterd: Meterd = request.app.state.meterd
    return await query_route.query(body, request, session.key, meterd)


def filename(meter: str, start: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{meter}-{start[:10]}") + ".csv"


@router.get("/export.csv")
async def export(request: Request, session: SessionDep) -> Response:
    """The meter view's rows as the API's CSV (``POST /v1/query`` with ``Accept: text/csv``)."""
    meterd: Meterd = request.app.state.meterd
    meter = request.query_params.get("meter", "")
    if await meterd.store.get_meter(session.tenant, meter) is None:
        raise NotFound(f"There is no meter {meter!r}.")
    view = parse_view(dict(request.query_params.items()), meterd.clock(), "24h")
    if view.errors:
        message = "; ".join(f"{e.path} {e.message}" for e in view.errors)
        return page(request, "error.html", {"status": 422, "message": message}, session, status=422)
    spec = QueryIn.model_validate(view.query_body((meter,))).spec()
    rows = await meterd.query(session.tenant, spec)
    headers = {**HEADERS, "content-disposition": f'attachment; filename="{filename(meter, view.params()["from"])}"'}
    return Response(query_route.rows_csv(spec, rows), media_type="text/csv; charset=utf-8", headers=headers)
