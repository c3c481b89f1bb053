"""Asynchronous jobs whose result is POSTed to a callback URL, with a timeout per attempt and bounded retries.

A job is the store object ``callback.job/<id>``: ``{"surface","status","url","request","created_at",
"attempts","last_error","finished_at"}``; ``status`` goes ``pending`` → ``delivered`` or ``failed``. The answer
is POSTed as JSON; 2xx is delivered, transport errors, timeouts, 408/425/429 and 5xx are retried with
exponential backoff, other statuses (and redirects, which are never followed) fail the job at once. A job
running when the server stops stays ``pending``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from meterd.core.callbacks import Retry, retryable
from meterd.core.errors import MeterdError
from meterd.service.meterd import Meterd

JOBS = "callback.job"
log = logging.getLogger("meterd.callbacks")

Compute = Callable[[], Awaitable[dict[str, Any]]]


class CallbackJobs:
    """Starts jobs and keeps their tasks alive until they finish."""

    def __init__(self, retry: Retry, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.retry = retry
        self.transport = transport
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(
        self, meterd: Meterd, tenant: str, surface: str, url: str, request: dict[str, Any], compute: Compute
    ) -> str:
        """Record a pending job, start it in the background and return its id at once."""
        job_id = str(uuid.uuid4())
        doc = {
            "surface": surface,
            "status": "pending",
            "url": url,
            "request": request,
            "created_at": meterd.clock(),
            "attempts": 0,
            "last_error": None,
            "finished_at": None,
        }
        await meterd.store.put_object(tenant, JOBS, job_id, doc)
        task = asyncio.create_task(self._run(meterd, tenant, job_id, doc, compute))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return job_id

    async def _run(self, meterd: Meterd, tenant: str, job_id: str, doc: dict[str, Any], compute: Compute) -> None:
        try:
            try:
                payload = await compute()
            except MeterdError as exc:
                await self._finish(meterd, tenant, job_id, doc, "failed", f"computing the answer: {exc.message}")
                return
            await self._deliver(meterd, tenant, job_id, doc, json.dumps(payload).encode())
        except Exception:  # a background task has nobody to answer to: log, never crash the loop
            log.exception("callback job %s failed", job_id)

    async def _deliver(self, meterd: Meterd, tenant: str, job_id: str, doc: dict[str, Any], body: bytes) -> None:
        headers = {"content-type": "application/json", "x-meterd-job-id": job_id}
        timeout = httpx.Timeout(self.retry.timeout_s)
        async with httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False, transport=self.transport
        ) as client:
            for attempt in range(1, self.retry.attempts + 1):
                doc["attempts"] = attempt
                try:
                    response = await client.post(doc["url"], content=body, headers=headers)
                except httpx.HTTPError as exc:
                    doc["last_error"] = f"{type(exc).__name__}: {exc}"[:500]
                else:
                    if 200 <= response.status_code < 300:
                        await self._finish(meterd, tenant, job_id, doc, "delivered", None)
                        return
                    doc["last_error"] = f"the callback answered {response.status_code}"
                    if not retryable(response.status_code):
                        break
                if attempt < self.retry.attempts:
                    await meterd.store.put_object(tenant, JOBS, job_id, doc)
                    await asyncio.sleep(self.retry.delay(attempt))
        await self._finish(meterd, tenant, job_id, doc, "failed", doc["last_error"])

    async def _finish(
        self, meterd: Meterd, tenant: str, job_id: str, doc: dict[str, Any], status: str, error: str | None
    ) -> None:
        doc.update(status=status, last_error=error, finished_at=meterd.clock())
        await meterd.store.put_object(tenant, JOBS, job_id, doc)

    async def drain(self) -> None:
        """Wait for every running job (tests and orderly shutdowns)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
