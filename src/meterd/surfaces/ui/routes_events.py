"""Events explorer: filter and page through events, open one with its audit trail, void or amend it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from meterd.core.errors import FieldError, Forbidden, InvalidInput, MeterdError
from meterd.core.models import EventStatus, StoredEvent
from meterd.core.timeutil import TimeParseError, parse_time
from meterd.service import Meterd
from meterd.service.ui_sessions import Session
from meterd.storage.base import EventFilter
from meterd.surfaces.ui.render import page
from meterd.surfaces.ui.security import HEADERS, checked_form, current_session, root

router = APIRouter()
SessionDep = Annotated[Session, Depends(current_session)]
PAGE_SIZE = 50
FILTERS = ("meter", "customer", "surface", "status", "from", "to")


def _filter(params: dict[str, str], errors: list[FieldError]) -> EventFilter:
    bounds: dict[str, int | None] = {"from": None, "to": None}
    for name in bounds:
        if params.get(name):
            try:
                bounds[name] = parse_time(params[name].strip(), name)
            except TimeParseError as exc:
                errors.append(exc.error)
    status = params.get("status") or None
    if status is not None and status not in ("live", "voided"):
        errors.append(FieldError("status", "must be live or voided"))
        status = None
    return EventFilter(params.get("surface") or None, params.get("meter") or None, params.get("customer") or None,
                       bounds["from"], bounds["to"], EventStatus(status) if status else None)


@router.get("/events")
async def events(request: Request, session: SessionDep) -> Response:
    meterd: Meterd = request.app.state.meterd
    params = {k: request.query_params.get(k, "").strip() for k in FILTERS}
    errors: list[FieldError] = []
    where = _filter(params, errors)
    cursor = request.query_params.get("cursor") or None
    if cursor is not None and not (cursor.isdigit() and len(cursor) < 19):
        errors.append(FieldError("cursor", "is not a page of this list"))
        cursor = None
    listed = await meterd.store.list_events(session.tenant, where, PAGE_SIZE, cursor) if not errors else None
    base_query = {k: v for k, v in params.items() if v}
    context: dict[str, Any] = {
        "params": params,
        "errors": {e.path: e.message for e in errors},
        "items": listed.items if listed else [],
        "next_href": (f"?{urlencode({**base_query, 'cursor': listed.next_cursor})}"
                      if listed and listed.next_cursor else None),
        "first_href": f"?{urlencode(base_query)}" if cursor else None,
    }
    return page(request, "events.html", context, session, status=422 if errors else 200)


async def _event_page(request: Request, session: Session, surface: str, event_id: str, status: int = 200,
                      error: str | None = None) -> Response:
    meterd: Meterd = request.app.state.meterd
    stored = await meterd.event(session.tenant, surface, event_id)
    corrections = await meterd.store.list_corrections(session.tenant, surface, await _first(meterd, session, stored))
    context = {"stored": stored, "event": stored.event, "corrections": corrections, "error": error,
               "done": request.query_params.get("done"),
               "dimensions_json": json.dumps(stored.event.dimensions, sort_keys=True)}
    return page(request, "event.html", context, session, status=status)


async def _first(meterd: Meterd, session: Session, stored: StoredEvent) -> str:
    """The id of the event a chain of amendments started from (its audit trail covers the whole chain)."""
    seen = {stored.event.id}
    while stored.replaces is not None and stored.replaces not in seen:
        found = await meterd.store.get_event(session.tenant, stored.event.surface, stored.replaces)
        if found is None:
            break
        seen.add(found.event.id)
        stored = found
    return stored.event.id


@router.get("/event")
async def event(request: Request, session: SessionDep) -> Response:
    surface = request.query_params.get("surface") or "native"
    event_id = request.query_params.get("id") or ""
    return await _event_page(request, session, surface, event_id)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _event_href(request: Request, surface: str, event_id: str, done: str) -> str:
    return f"{root(request).rstrip('/')}/event?" + urlencode({"surface": surface, "id": event_id, "done": done})


def _reason(form: FormData, session: Session) -> str:
    if not session.allows_ingest:
        raise Forbidden("Voiding and amending events needs a key with the ingest scope (as the API does).")
    reason = _text(form, "reason")
    if not reason or len(reason) > 1024:
        raise InvalidInput("Give a reason (up to 1024 characters): every correction is audited.")
    return reason


def changes_from(form: FormData) -> dict[str, Any]:
    """The fields an amendment changes: only the ones filled in."""
    changes: dict[str, Any] = {}
    value = _text(form, "value")
    if value:
        try:
            changes["value"] = float(value)
        except ValueError:
            raise InvalidInput("The value must be a number.") from None
    for name in ("time", "customer"):
        if _text(form, name):
            changes[name] = _text(form, name)
    dimensions = _text(form, "dimensions")
    if dimensions:
        try:
            changes["dimensions"] = json.loads(dimensions)
        except ValueError:
            raise InvalidInput('Dimensions must be a JSON object, like {"region": "eu"}.') from None
    if not changes:
        raise InvalidInput("Change at least one field to amend the event.")
    return changes


Correct = Callable[[FormData, str, str, str], Awaitable[str]]


async def _correct(request: Request, session: Session, action: Correct) -> Response:
    """Check the form, apply a correction, and go to the result; problems are shown on the event's page."""
    form = await checked_form(request, session)
    surface, event_id = _text(form, "surface") or "native", _text(form, "id")
    try:
        href = await action(form, surface, event_id, _reason(form, session))
    except MeterdError as exc:
        if exc.status == 404:
            raise
        message = exc.message + "".join(f" {e.path}: {e.message}." for e in exc.errors)
        return await _event_page(request, session, surface, event_id, exc.status, message)
    return RedirectResponse(href, 303, HEADERS)


@router.post("/event/void")
async def void(request: Request, session: SessionDep) -> Response:
    meterd: Meterd = request.app.state.meterd

    async def action(form: FormData, surface: str, event_id: str, reason: str) -> str:
        await meterd.void(session.tenant, surface, event_id, reason, session.key)
        return _event_href(request, surface, event_id, "void")

    return await _correct(request, session, action)


@router.post("/event/amend")
async def amend(request: Request, session: SessionDep) -> Response:
    meterd: Meterd = request.app.state.meterd

    async def action(form: FormData, surface: str, event_id: str, reason: str) -> str:
        changes = changes_from(form)
        _, replacement = await meterd.amend(session.tenant, surface, event_id, changes, reason, session.key)
        return _event_href(request, surface, replacement.event.id, "amend")

    return await _correct(request, session, action)
