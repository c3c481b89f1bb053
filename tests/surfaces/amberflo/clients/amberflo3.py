"""Drive amberflo-metering-python 3.x (run in .venv-amberflo3): read a plan as JSON on stdin, print results as JSON.

Runs outside meterd's virtualenv, so it imports only the client. Each step names an SDK call; the last line of
stdout is ``{"results": [...]}`` with one entry per step (an ``{"error": {...}}`` when the SDK raised).
"""

from __future__ import annotations

import json
import sys
import threading

from metering.customer import CustomerApiClient, create_customer_payload
from metering.exceptions import ApiError
from metering.ingest import create_ingest_client
from metering.ingest.api_client import IngestApiClient
from metering.session.api_session import ApiSession
from metering.session.ingest_session import IngestSession
from metering.usage import (
    AggregationType,
    Take,
    TimeGroupingInterval,
    TimeRange,
    UsageApiClient,
    create_all_usage_query,
    create_usage_query,
)


def fast_backoff(*args, **kwargs):
    while True:
        yield 0.01


def usage_query(q):
    rng = TimeRange(q["start"], q.get("end"))
    take = Take(q["take"][0], q["take"][1]) if q.get("take") else None
    return create_usage_query(
        AggregationType[q["aggregation"]],
        q["meter"],
        TimeGroupingInterval[q["interval"]],
        rng,
        group_by=q.get("group_by"),
        usage_filter=q.get("filter"),
        take=take,
    )


def meter(key, step):
    errors = []
    lock = threading.Lock()

    def on_error(exc, batch):
        with lock:
            errors.append({"status": getattr(exc, "status_code", None), "size": len(batch)})

    client = create_ingest_client(
        api_key=key,
        threads=step.get("threads", 2),
        batch_size=step.get("batch_size", 10),
        send_interval_in_secs=0.05,
        sleep_interval_in_secs=0.01,
        retries=step.get("retries", 3),
        on_error=on_error,
        backoff_delay=fast_backoff,
    )
    queued = [
        client.meter(
            r["meterApiName"],
            r["meterValue"],
            r["meterTimeInMillis"],
            r["customerId"],
            dimensions=r.get("dimensions"),
            unique_id=r.get("uniqueId"),
        )
        for r in step["records"]
    ]
    client.shutdown()
    return {"queued": queued, "errors": errors}


def run(key, step):
    op = step["op"]
    if op == "meter":
        return meter(key, step)
    if op == "send":
        return IngestApiClient(key).send(step["payload"])
    if op == "usage":
        return UsageApiClient(key).get(usage_query(step["query"]))
    if op == "usage_batch":
        return UsageApiClient(key).get([usage_query(q) for q in step["queries"]])
    if op == "usage_all":
        params = create_all_usage_query(
            TimeGroupingInterval[step["interval"]],
            TimeRange(step["start"], step.get("end")),
            filter_by_customer_id=step.get("customer"),
            group_by_customer_id=step.get("by_customer", False),
        )
        return UsageApiClient(key).get_all(params)
    customers = CustomerApiClient(key)
    if op == "customer_list":
        return customers.list()
    if op == "customer_get":
        return customers.get(step["id"])
    if op == "customer_delete":
        return customers.client.delete("/customers/" + step["id"])
    payload = create_customer_payload(
        step["id"],
        step["name"],
        customer_email=step.get("email"),
        enabled=step.get("enabled"),
        traits=step.get("traits"),
    )
    if op == "customer_add":
        return customers.add(payload)
    if op == "customer_update":
        return customers.update(payload)
    if op == "customer_add_or_update":
        return customers.add_or_update(payload)
    raise ValueError(op)


def main():
    plan = json.load(sys.stdin)
    ApiSession.root_url = plan["url"]
    IngestSession.root_url = plan["url"]
    results = []
    for step in plan["steps"]:
        try:
            results.append(run(plan["key"], step))
        except ApiError as exc:
            results.append({"error": {"status": exc.status_code, "text": str(exc)}})
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()
