"""A small in-memory implementation of the native API contract (docs/api.md) behind httpx.MockTransport.

It validates with the core's parse_event, dedups by (surface, id) with duplicate/conflict by content,
keeps rejections, and can inject faults (status codes, Retry-After, transport errors) per request.
Used until (and beside) the real server; tests that need the real app live in test_real_server.py.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections import deque
from typing import Any

import httpx

from meterd.core.errors import InvalidInput
from meterd.core.events import fingerprint, parse_event
from meterd.core.models import UsageEvent
from meterd.core.timeutil import format_ms, now_ms


class FakeServer:
    def __init__(self, api_key: str = "k") -> None:
        self.api_key = api_key
        self.events: dict[str, UsageEvent] = {}
        self.fingerprints: dict[str, str] = {}
        self.rejections: list[dict[str, Any]] = []
        self.customers: dict[str, dict[str, Any]] = {}
        self.meters: dict[str, dict[str, Any]] = {}
        self.faults: deque[Any] = deque()
        self.requests: list[httpx.Request] = []
        self.max_batch = 10_000
        self.lock = threading.Lock()

    # transports ---------------------------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            fault = self.faults.popleft() if self.faults else None
        if fault is not None:
            if isinstance(fault, Exception):
                raise fault
            if callable(fault):
                result = fault(request)
                if result is not None:
                    return result
            else:
                status, headers = fault if isinstance(fault, tuple) else (fault, {})
                return problem(status, "injected", headers=headers)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return problem(401, "no or bad key")
        with self.lock:
            return self.route(request)

    def route(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path == "/v1/events" and method == "POST":
            return self.post_events(request)
        if path.startswith("/v1/customers"):
            return self.customers_route(request, path[len("/v1/customers") :].strip("/"))
        if path.startswith("/v1/meters"):
            return self.meters_route(request, path[len("/v1/meters") :].strip("/"))
        if path == "/readyz":
            return httpx.Response(200, json={"ok": True})
        return problem(404, "no route")

    # events -------------------------------------------------------------------------------------------
    def post_events(self, request: httpx.Request) -> httpx.Response:
        raw = request.content
        if request.headers.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
        try:
            data = json.loads(raw)
        except ValueError:
            return problem(422, "body is not JSON")
        records = data if isinstance(data, list) else [data]
        if len(records) > self.max_batch:
            return problem(413, "too many events")
        results, counts = [], {"accepted": 0, "duplicate": 0, "conflict": 0, "rejected": 0}
        for index, record in enumerate(records):
            result = self.ingest_one(index, record)
            counts[result["outcome"]] += 1
            results.append(result)
        return httpx.Response(200, json={"results": results, "counts": counts})

    def ingest_one(self, index: int, record: Any) -> dict[str, Any]:
        try:
            event = parse_event(record, now=now_ms())
        except InvalidInput as exc:
            self.rejections.append({"id": len(self.rejections) + 1, "raw": json.dumps(record)})
            return {
                "index": index,
                "id": record.get("id") if isinstance(record, dict) else None,
                "outcome": "rejected",
                "errors": [e.as_dict() for e in exc.errors],
            }
        known = self.fingerprints.get(event.id)
        if known is None:
            self.events[event.id] = event
            self.fingerprints[event.id] = fingerprint(event)
            outcome = "accepted"
        elif known == fingerprint(event):
            outcome = "duplicate"
        else:
            self.rejections.append({"id": len(self.rejections) + 1, "raw": json.dumps(record)})
            outcome = "conflict"
        return {"index": index, "id": event.id, "outcome": outcome}

    def total(self, meter: str | None = None) -> float:
        return sum(e.value for e in self.events.values() if meter is None or e.meter == meter)

    # customers and meters -----------------------------------------------------------------------------
    def customers_route(self, request: httpx.Request, key: str) -> httpx.Response:
        if not key and request.method == "POST":
            body = json.loads(request.content)
            if body["id"] in self.customers:
                return problem(409, "customer exists")
            self.customers[body["id"]] = customer = {
                "name": None,
                "email": None,
                "traits": {},
                "enabled": True,
                **body,
                "created_at": format_ms(now_ms()),
            }
            return httpx.Response(201, json=customer)
        if not key:
            items = sorted(self.customers.values(), key=lambda c: c["id"])
            return httpx.Response(200, json={"items": items, "next_cursor": None})
        if key not in self.customers:
            return problem(404, "no such customer")
        if request.method == "PUT":
            self.customers[key].update(json.loads(request.content))
        if request.method == "DELETE":
            del self.customers[key]
            return httpx.Response(204)
        return httpx.Response(200, json=self.customers[key])

    def meters_route(self, request: httpx.Request, key: str) -> httpx.Response:
        if not key and request.method == "POST":
            body = json.loads(request.content)
            self.meters[body["key"]] = meter = {"aggregation": "sum", **body}
            return httpx.Response(201, json=meter)
        if not key:
            return httpx.Response(200, json={"items": list(self.meters.values())})
        if key not in self.meters:
            return problem(404, "no such meter")
        return httpx.Response(200, json=self.meters[key])


def problem(
    status: int, detail: str, errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {
        "type": f"/problems/{'invalid_input' if status == 422 else 'error'}",
        "title": "error",
        "status": status,
        "detail": detail,
        "errors": errors or [],
    }
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json", **(headers or {})})
