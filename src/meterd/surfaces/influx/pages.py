"""The registration pages: GET /start shows the form, POST /start registers and redirects with ``?token=``.

The browser comes from the product (``client.RegistrationURL``) with cluster_id, product and redirect_url.
It goes back only to a host on ``Settings.influx_redirect_hosts``; without a redirect_url the token is shown.
"""

from __future__ import annotations

from html import escape
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from meterd.core.errors import FieldError, InvalidInput, MeterdError
from meterd.core.influx_registration import Registration, check_form, check_registration, with_token
from meterd.server.body import read_limited
from meterd.service.influx_tokens import InfluxTokens

MAX_FORM = 16 * 1024
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}"
    "label{display:block;margin:1rem 0 .25rem;font-weight:600}"
    "input[type=text],input[type=email]{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}"
    "button{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem}"
    ".error{color:#b00020}.muted{color:#666;font-size:.9rem}code{word-break:break-all}"
)


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})


def problem_page(exc: MeterdError, status: int) -> HTMLResponse:
    return page("Registration is not possible", f'<p class="error">{escape(exc.message)}</p>', status)


def form_page(reg: Registration, values: dict[str, str], errors: list[FieldError], status: int = 200) -> HTMLResponse:
    """The registration form, with the values and messages of a failed attempt."""

    def field(name: str, label: str, kind: str) -> str:
        messages = "".join(f'<div class="error">{escape(e.message)}</div>' for e in errors if e.path == name)
        value = escape(values.get(name, ""))
        return (
            f'<label for="{name}">{label}</label>'
            f'<input type="{kind}" id="{name}" name="{name}" value="{value}" required maxlength="254">{messages}'
        )

    carried = (("cluster_id", reg.cluster_id), ("product", reg.product), ("redirect_url", reg.redirect_url))
    hidden = "".join(f'<input type="hidden" name="{n}" value="{escape(v or "")}">' for n, v in carried)
    general = "".join(
        f'<p class="error">{escape(e.message)}</p>' for e in errors if e.path not in ("organization", "email")
    )
    body = (
        f"<p>Register <strong>{escape(reg.product)}</strong> cluster <code>{escape(reg.cluster_id)}</code> "
        "so that its usage is associated with your organization.</p>"
        f'{general}<form method="post" action="start">{hidden}'
        f"{field('organization', 'Organization name', 'text')}{field('email', 'Email', 'email')}"
        '<button type="submit">Register</button></form>'
    )
    return page("Register your cluster", body, status)


def token_page(reg: Registration, token: str, customer: str) -> HTMLResponse:
    body = (
        f"<p>Cluster <code>{escape(reg.cluster_id)}</code> is registered to <strong>{escape(customer)}</strong>.</p>"
        "<p>Give the product this token (it is shown only once):</p>"
        f'<p><code id="token">{escape(token)}</code></p>'
    )
    return page("Registered", body)


def build_router(tokens: InfluxTokens, allowed_hosts: tuple[str, ...]) -> APIRouter:
    """GET and POST /start over ``tokens``."""
    router = APIRouter(tags=["influx"])

    @router.get("/start", response_class=HTMLResponse, summary="Registration page of the influx usage-client")
    async def start(cluster_id: str = "", product: str = "", redirect_url: str = "") -> Response:
        try:
            reg = check_registration(cluster_id, product, redirect_url, allowed_hosts)
        except InvalidInput as exc:
            return problem_page(exc, 422)
        return form_page(reg, {}, [])

    @router.post("/start", response_class=HTMLResponse, summary="Register: find or create the customer, issue a token")
    async def register(request: Request) -> Response:
        try:
            form = await read_form(request)
            reg = check_registration(
                form.get("cluster_id", ""), form.get("product", ""), form.get("redirect_url", ""), allowed_hosts
            )
        except InvalidInput as exc:
            return problem_page(exc, 413 if exc.status == 413 else 422)
        try:
            customer_id, organization, email = check_form(form.get("organization", ""), form.get("email", ""))
            issued = await tokens.register(reg, customer_id, organization, email)
        except InvalidInput as exc:
            return form_page(reg, form, exc.errors or [FieldError("", exc.message)], 422)
        except MeterdError as exc:
            return form_page(reg, form, [FieldError("", exc.message)], exc.status)
        if reg.redirect_url is None:
            return token_page(reg, issued.token, issued.customer)
        return RedirectResponse(with_token(reg.redirect_url, issued.token), status_code=303)

    return router


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body of at most MAX_FORM bytes (the last value of a repeated field wins)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise InvalidInput("send the registration form as application/x-www-form-urlencoded")
    data = await read_limited(request, MAX_FORM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the form is not valid UTF-8") from None
    return dict(parse_qsl(text, keep_blank_values=True))
