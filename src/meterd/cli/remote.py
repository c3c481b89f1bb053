"""Client commands that talk to a running server over HTTP: ``ingest FILE`` and ``query``."""

from __future__ import annotations

import csv
import gzip
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import httpx
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from meterd.cli.output import emit, err

url_option = click.option("--url", envvar="METERD_URL", default="http://127.0.0.1:8080", show_default=True)
key_option = click.option("--api-key", envvar="METERD_API_KEY", required=True, help="Or METERD_API_KEY.")
EVENT_COLUMNS = ("id", "meter", "customer", "time", "value", "end_time")


def read_records(path: Path, fmt: str) -> Iterator[dict[str, Any]]:
    """Records of an NDJSON or CSV file (``.gz`` allowed); CSV columns beyond the event fields are dimensions."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        if fmt == "csv":
            for row in csv.DictReader(handle):
                yield csv_record(row)
        else:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise click.ClickException(f"{path}:{number}: not JSON ({exc.msg})") from exc


def csv_record(row: dict[str, str]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    dims: dict[str, Any] = {}
    for column, cell in row.items():
        if column is None or cell is None or cell == "":
            continue
        if column == "value":
            try:
                record["value"] = float(cell)
            except ValueError:
                record["value"] = cell
        elif column in EVENT_COLUMNS:
            record[column] = cell
        else:
            dims[column.removeprefix("dimensions.")] = cell
    if dims:
        record["dimensions"] = dims
    return record


def post_batch(client: httpx.Client, batch: list[dict[str, Any]], attempts: int = 5) -> dict[str, Any]:
    """Send one batch, retrying transport errors and 429/5xx (safe: ids make resends duplicates)."""
    body = gzip.compress(json.dumps(batch).encode(), compresslevel=1)
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    for attempt in range(attempts):
        try:
            response = client.post("/v1/events", content=body, headers=headers)
        except httpx.TransportError as exc:
            if attempt == attempts - 1:
                raise click.ClickException(f"cannot reach the server: {exc}") from exc
        else:
            if response.status_code == 200:
                result: dict[str, Any] = response.json()
                return result
            if response.status_code not in (429, 502, 503, 504) or attempt == attempts - 1:
                raise click.ClickException(f"the server answered {response.status_code}: {response.text[:500]}")
        time.sleep(min(2**attempt * 0.2, 5))
    raise click.ClickException("unreachable")


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["auto", "ndjson", "csv"]), default="auto", show_default=True)
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 10_000))
@url_option
@key_option
def ingest(file: Path, fmt: str, batch_size: int, url: str, api_key: str) -> None:
    """Send the events of an NDJSON or CSV FILE; exits 1 if any record was rejected or conflicted."""
    if fmt == "auto":
        fmt = "csv" if ".csv" in file.suffixes else "ndjson"
    totals: Counter[str] = Counter()
    problems: list[dict[str, Any]] = []
    size = file.stat().st_size
    with (
        httpx.Client(base_url=url, headers={"authorization": f"Bearer {api_key}"}, timeout=60) as client,
        Progress(
            TextColumn("[bold]ingest"),
            BarColumn(),
            TextColumn("{task.completed:,} events"),
            TimeRemainingColumn(),
            transient=not sys.stderr.isatty(),
            console=None,
        ) as progress,
    ):
        task = progress.add_task("ingest", total=None if file.suffix == ".gz" else size)
        batch: list[dict[str, Any]] = []
        for record in read_records(file, fmt):
            batch.append(record)
            if len(batch) == batch_size:
                _send(client, batch, totals, problems)
                progress.update(task, completed=sum(totals.values()))
                batch = []
        if batch:
            _send(client, batch, totals, problems)
        progress.update(task, completed=sum(totals.values()), total=sum(totals.values()))
    emit(
        [{"outcome": k, "count": totals.get(k, 0)} for k in ("accepted", "duplicate", "conflict", "rejected")],
        ["outcome", "count"],
        title=f"{file.name}: {sum(totals.values()):,} records",
    )
    for problem in problems[:20]:
        detail = "; ".join(f"{e['path']}: {e['message']}" for e in problem.get("errors", [])) or problem.get("message")
        err(f"record {problem['index']}: {problem['outcome']}: {detail}")
    if len(problems) > 20:
        err(f"... and {len(problems) - 20} more (see GET /v1/rejections)")
    if totals["rejected"] or totals["conflict"]:
        sys.exit(1)


def _send(
    client: httpx.Client, batch: list[dict[str, Any]], totals: Counter[str], problems: list[dict[str, Any]]
) -> None:
    offset = sum(totals.values())
    answer = post_batch(client, batch)
    for result in answer["results"]:
        totals[result["outcome"]] += 1
        if result["outcome"] in ("rejected", "conflict"):
            problems.append({**result, "index": offset + result["index"]})


@click.command()
@click.option("--meter", "meters", multiple=True, required=True)
@click.option("--from", "from_", required=True, help="RFC 3339 start (inclusive).")
@click.option("--to", required=True, help="RFC 3339 end (exclusive).")
@click.option("--window", type=click.Choice(["none", "minute", "hour", "day", "week", "month"]), default="none")
@click.option("--tz", "time_zone", default="UTC", show_default=True)
@click.option("--group-by", multiple=True, help="customer or a dimension; repeatable.")
@click.option("--customer", "customers", multiple=True)
@click.option("--aggregation", default=None)
@click.option("--top", type=int, default=None, help="Keep the N largest groups.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
@url_option
@key_option
def query(
    meters: tuple[str, ...],
    from_: str,
    to: str,
    window: str,
    time_zone: str,
    group_by: tuple[str, ...],
    customers: tuple[str, ...],
    aggregation: str | None,
    top: int | None,
    as_json: bool,
    as_csv: bool,
    url: str,
    api_key: str,
) -> None:
    """Ask the server how much was used: a table on a terminal, --json or --csv for scripts."""
    body: dict[str, Any] = {
        "meters": list(meters),
        "from": from_,
        "to": to,
        "window": window,
        "time_zone": time_zone,
        "group_by": list(group_by),
    }
    if customers:
        body["filters"] = {"customers": list(customers)}
    if aggregation:
        body["aggregation"] = aggregation
    if top:
        body["take"] = {"limit": top, "order": "desc"}
    try:
        response = httpx.post(f"{url}/v1/query", json=body, headers={"authorization": f"Bearer {api_key}"}, timeout=60)
    except httpx.TransportError as exc:
        raise click.ClickException(f"cannot reach the server: {exc}") from exc
    if response.status_code != 200:
        raise click.ClickException(f"the server answered {response.status_code}: {response.text[:1000]}")
    rows = [
        {"meter": r["meter"], "start": r["start"], "end": r["end"], **r["group"], "value": r["value"]}
        for r in response.json()["rows"]
    ]
    columns = ["meter", "start", "end", *group_by, "value"]
    emit(rows, columns, fmt="json" if as_json else "csv" if as_csv else "table")
