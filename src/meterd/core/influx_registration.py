"""Influx customer registration (the usage-client's ``/start``): customer ids, form checks, redirects, tokens.

A registration names a cluster and a product; the form adds an organization name and an email. The
organization decides the customer (its slug is the customer id: the same name finds the same customer).
The browser is sent back to ``redirect_url`` with ``?token=...`` only when the URL's host is on the
operator's allowlist (``host`` for any port, or ``host:port``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.influx import ANONYMOUS

TOKEN_PREFIX = "it"
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_ORGANIZATION = 200
MAX_EMAIL = 254
MAX_URL = 2048
MAX_PARAM = 256


@dataclass(frozen=True, slots=True)
class Registration:
    """What /start was asked for: a cluster, a product and where to send the browser afterwards."""

    cluster_id: str
    product: str
    redirect_url: str | None


def customer_id(organization: str) -> str:
    """The customer id of an organization name: lower-case letters and digits joined by single dashes."""
    return re.sub(r"[^a-z0-9]+", "-", organization.casefold()).strip("-")[:128].strip("-")


def check_registration(
    cluster_id: str, product: str, redirect_url: str, allowed_hosts: tuple[str, ...]
) -> Registration:
    """The parameters of /start; InvalidInput says what is missing or not allowed."""
    cluster, prod, redirect = cluster_id.strip(), product.strip(), redirect_url.strip()
    if not cluster or not prod:
        raise InvalidInput("You must supply both a ClusterID and a Product!", [FieldError("cluster_id", "")])
    errors: list[FieldError] = []
    if len(cluster) > MAX_PARAM:
        errors.append(FieldError("cluster_id", f"must be at most {MAX_PARAM} characters"))
    if len(prod) > MAX_PARAM:
        errors.append(FieldError("product", f"must be at most {MAX_PARAM} characters"))
    if redirect:
        problem = redirect_problem(redirect, allowed_hosts)
        if problem:
            errors.append(FieldError("redirect_url", problem))
    if errors:
        raise InvalidInput("; ".join(f"{e.path} {e.message}" for e in errors), errors)
    return Registration(cluster, prod, redirect or None)


def redirect_problem(url: str, allowed_hosts: tuple[str, ...]) -> str | None:
    """Why the browser may not be sent to ``url``, or None when its host is on the allowlist."""
    if len(url) > MAX_URL:
        return f"must be at most {MAX_URL} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http or https URL"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password"
    host = parts.hostname.lower()
    allowed = {h.strip().lower() for h in allowed_hosts}
    if host in allowed or (port is not None and f"{host}:{port}" in allowed):
        return None
    return f"points to {host!r}, which is not on this server's list of allowed redirect hosts"


def with_token(url: str, token: str) -> str:
    """``url`` with ``token=<token>`` added to its query (replacing any token already there)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    query.append(("token", token))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def check_form(organization: str, email: str) -> tuple[str, str, str]:
    """(customer id, organization, email) of the registration form; InvalidInput names each bad field."""
    org, mail = organization.strip(), email.strip()
    errors: list[FieldError] = []
    cid = customer_id(org)
    if not org:
        errors.append(FieldError("organization", "Organization name can not be blank."))
    elif len(org) > MAX_ORGANIZATION:
        errors.append(FieldError("organization", f"Organization name must be at most {MAX_ORGANIZATION} characters."))
    elif not cid:
        errors.append(FieldError("organization", "Organization name needs at least one letter or digit."))
    elif cid == ANONYMOUS:
        errors.append(FieldError("organization", "That organization name is reserved."))
    if not mail:
        errors.append(FieldError("email", "Email can not be blank."))
    elif len(mail) > MAX_EMAIL or not EMAIL_RE.match(mail):
        errors.append(FieldError("email", "Email is not a valid address."))
    if errors:
        raise InvalidInput("the registration form is invalid", errors)
    return cid, org, mail


def token_id(token: str) -> str | None:
    """The id inside a presented token (``it_<id>_<secret>``), or None when it is not one."""
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]
