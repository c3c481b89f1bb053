"""Runs the real amieclient (in .venv-amie) through a list of steps read as JSON on stdin; prints JSON results.

Input: {"url": ..., "site": ..., "key": ..., "steps": [{"op": "send"|"failed"|"clear"|"clear_last"|"status", ...}]}.
Every step yields one result; a client exception becomes {"exception": class name, "text": message}. The
client's objects are described field by field (never repr'd: UsageRecordError.__repr__ is broken).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import amieclient
from amieclient.usage import record as records

RECORD_CLASSES = {
    "compute": records.ComputeUsageRecord,
    "storage": records.StorageUsageRecord,
    "adjustment": records.AdjustmentUsageRecord,
}


def describe_record(record: Any) -> dict[str, Any]:
    return {
        "type": record.record_type,
        "resource": record.resource,
        "local_record_id": record.local_record_id,
        "charge": record.charge,
    }


def describe_failed(failed: Any) -> dict[str, Any]:
    return {"error": failed.error, "failed_record_id": failed.failed_record_id, **describe_record(failed.record)}


def run_step(client: Any, step: dict[str, Any], state: dict[str, Any]) -> Any:
    op = step["op"]
    if op == "send":
        made = [RECORD_CLASSES[step["type"]](**kwargs) for kwargs in step["records"]]
        responses = client.send(made)
        return [{"message": r.message, "failed": [describe_failed(f) for f in r.failed_records]} for r in responses]
    if op == "failed":
        response = client.get_failed_records()
        state["last_failed"] = response.failed_records
        return [describe_failed(f) for f in response.failed_records]
    if op == "clear":
        return client.clear_failed_records(step["ids"])
    if op == "clear_last":
        return client.clear_failed_records(state["last_failed"])
    if op == "status":
        start = datetime.fromisoformat(step["from"]) if step.get("from") else None
        end = datetime.fromisoformat(step["to"]) if step.get("to") else None
        status = client.status(start, end)
        return [
            {
                "resource": r.resource,
                "loaded": r.loaded_record_count,
                "failed": r.failed_job_count,
                "total_charge": r.total_charge,
                "errors": [
                    {"error": e.error, "records": [describe_record(x) for x in e.message.records]} for e in r.errors
                ],
            }
            for r in status.resources
        ]
    raise ValueError(f"unknown step {op!r}")


def main() -> None:
    program = json.load(sys.stdin)
    client = amieclient.UsageClient(program["site"], program["key"], usage_url=program["url"])
    state: dict[str, Any] = {}
    results = []
    for step in program["steps"]:
        try:
            results.append(run_step(client, step, state))
        except Exception as exc:
            results.append({"exception": type(exc).__name__, "text": str(exc)})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
