"""HTML rendering: one Jinja2 environment (autoescaped), the common page context, and value formatting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.responses import HTMLResponse

from meterd import __version__
from meterd.core.timeutil import format_ms
from meterd.service.ui_sessions import Session
from meterd.surfaces.ui.security import CSRF_FIELD, HEADERS, root

TEMPLATES = Path(__file__).parent / "templates"
NAV = (("overview", "", "Overview"), ("meters", "meters", "Meters"), ("customers", "customers", "Customers"),
       ("ingest", "ingest", "Ingest health"), ("events", "events", "Events"))


def number(value: float | int | None) -> str:
    """A readable number: integers without decimals, others to 4 significant decimals; blank for none."""
    if value is None:
        return "\N{EN DASH}"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def when(ms: int | None) -> str:
    return "" if ms is None else format_ms(ms)


def json_script(value: Any) -> Markup:
    """JSON safe to place inside a ``<script type="application/json">`` element."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=True)
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = number
    env.filters["when"] = when
    env.filters["json_script"] = json_script
    env.globals["urlencode"] = lambda params: urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return env


def page(
    request: Request,
    template: str,
    context: dict[str, Any],
    session: Session | None = None,
    status: int = 200,
) -> HTMLResponse:
    """Render a page with the shared context (root path, navigation, CSRF token, version)."""
    env: Environment = request.app.state.templates
    base = root(request).rstrip("/")
    shared = {
        "base": base,
        "static": f"{base}/static",
        "version": __version__,
        "nav": NAV,
        "session": session,
        "csrf_field": CSRF_FIELD,
        "csrf": session.csrf if session else "",
        "can_ingest": session is not None and session.allows_ingest,
        "can_admin": session is not None and session.allows_admin,
    }
    html = env.get_template(template).render({**shared, **context})
    return HTMLResponse(html, status_code=status, headers=HEADERS)
