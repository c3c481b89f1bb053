"""Drive amberflo-metering-python 2.3.0 (run in .venv-amberflo2): read a plan as JSON on stdin, print results.

2.x keeps its URLs in module globals and posts from its own consumer threads; it also prints progress to stdout,
so the results are the LAST line of stdout: ``{"results": [...]}``.
"""

from __future__ import annotations

import json
import sys
import threading

import backoff
import metering.customer
import metering.request
import metering.usage
from metering.client import Client
from metering.request import APIError
from metering.usage import AggregationType, Take, TimeGroupingInterval, TimeRange, UsageClient
from metering.usage_payload_factory import UsagePayloadFactory


def fast_expo(*args, **kwargs):
    while True:
        yield 0.01


def meter(key, step):
    errors = []
    lock = threading.Lock()

    def on_error(exc, batch):
        with lock:
            errors.append({"status": getattr(exc, "status", None), "size": len(batch)})

    client = Client(
        key,
        max_batch_size=step.get("batch_size", 10),
        send_interval=0.05,
        max_retries=step.get("retries", 2),
        on_error=on_error,
    )
    queued = [
        client.meter(
            r["meterApiName"],
            r["meterValue"],
            r["meterTimeInMillis"],
            r["customerId"],
            dimensions=r.get("dimensions"),
            unique_id=r.get("uniqueId"),
        )[0]
        for r in step["records"]
    ]
    client.shutdown()
    return {"queued": queued, "errors": errors}


def run(key, step):
    op = step["op"]
    if op == "meter":
        return meter(key, step)
    if op == "usage":
        q = step["query"]
        take = Take(q["take"][0], q["take"][1]) if q.get("take") else None
        payload = UsagePayloadFactory.create(
            q["meter"],
            AggregationType[q["aggregation"]],
            TimeGroupingInterval[q["interval"]],
            TimeRange(q["start"], q.get("end")),
            group_by=q.get("group_by"),
            usage_filter=q.get("filter"),
            take=take,
        )
        return {"payload": payload, "report": UsageClient(key).get_usage(payload)}
    if op == "customer_add_or_update":
        return Client(key, send=False).add_or_update_customer(step["id"], step["name"], traits=step.get("traits"))
    raise ValueError(op)


def main():
    plan = json.load(sys.stdin)
    backoff.expo = fast_expo  # the consumer looks backoff.expo up at each send
    metering.request.ingest_url = plan["url"] + "/ingest"
    metering.usage.usage_url = plan["url"] + "/usage"
    metering.customer.url = plan["url"] + "/customers"
    results = []
    for step in plan["steps"]:
        try:
            results.append(run(plan["key"], step))
        except APIError as exc:
            results.append({"error": {"status": exc.status, "text": exc.message}})
    sys.stdout.write("\n" + json.dumps({"results": results}) + "\n")


if __name__ == "__main__":
    main()
