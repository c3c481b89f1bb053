"""Process-local metrics in Prometheus text format: request latency by route, store timings, ingest outcomes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    """Cumulative latency buckets for one label set."""

    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    n: int = 0

    def observe(self, seconds: float) -> None:
        self.n += 1
        self.total += seconds
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1


@dataclass
class Metrics:
    requests: dict[tuple[str, str, int], Histogram] = field(default_factory=dict)
    store: dict[str, Histogram] = field(default_factory=dict)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.setdefault((method, route, status), Histogram()).observe(seconds)

    def observe_store(self, operation: str, seconds: float) -> None:
        self.store.setdefault(operation, Histogram()).observe(seconds)

    def render(self, outcomes: dict[tuple[str, str], int]) -> str:
        lines = [
            "# HELP meterd_ingest_records_total Records ingested, by surface and outcome.",
            "# TYPE meterd_ingest_records_total counter",
        ]
        for (surface, outcome), n in sorted(outcomes.items()):
            lines.append(f'meterd_ingest_records_total{{surface="{surface}",outcome="{outcome}"}} {n}')
        lines += _histogram(
            "meterd_request_duration_seconds",
            "HTTP request latency by method, route and status.",
            {f'method="{m}",route="{r}",status="{s}"': h for (m, r, s), h in sorted(self.requests.items())},
        )
        lines += _histogram(
            "meterd_store_duration_seconds",
            "Store operation latency.",
            {f'operation="{op}"': h for op, h in sorted(self.store.items())},
        )
        return "\n".join(lines) + "\n"


def _histogram(name: str, help_text: str, series: dict[str, Histogram]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    for labels, h in series.items():
        for bound, count in zip(BUCKETS, h.counts, strict=True):
            lines.append(f'{name}_bucket{{{labels},le="{bound}"}} {count}')
        lines.append(f'{name}_bucket{{{labels},le="+Inf"}} {h.n}')
        lines.append(f"{name}_sum{{{labels}}} {h.total:.6f}")
        lines.append(f"{name}_count{{{labels}}} {h.n}")
    return lines


class MetricsMiddleware:
    """Pure ASGI middleware timing each HTTP request under its route template (not its raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(scope["method"], template, status, time.perf_counter() - started)
