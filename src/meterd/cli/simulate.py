"""``meterd simulate``: a load generator built on the SDK (the Amberflo simulator's successor).

It meters random usage (meters, customers, dimensions, values) from N threads at a target rate or as fast as
possible, with an optional share of exact resends (the server must answer ``duplicate``), shows a live
progress bar, and ends with what the server did: accepted, duplicates, rejected, conflicts, drops, events/s.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

import meterd

Event = tuple[str, float, str, datetime, dict[str, Any], str]


@dataclass(frozen=True, slots=True)
class Plan:
    """What to generate: names, value range, dimension choices, volume, pace and resend share."""

    meters: tuple[str, ...]
    customers: tuple[str, ...]
    dimensions: dict[str, tuple[str, ...]]
    low: int
    high: int
    total: int
    rate: float
    threads: int
    duplicates: float
    seed: int | None


def parse_dimension(text: str) -> tuple[str, tuple[str, ...]]:
    """``region=eu|us|ap`` → ("region", ("eu", "us", "ap"))."""
    key, sep, values = text.partition("=")
    choices = tuple(v for v in values.split("|") if v)
    if not sep or not key or not choices:
        raise click.BadParameter(f"expected KEY=VALUE|VALUE..., got {text!r}", param_hint="--dimension")
    return key, choices


def generate(plan: Plan, thread: int, count: int) -> list[Event]:
    """The events one thread meters, in order (``duplicates`` of them repeat an earlier one exactly)."""
    rng = random.Random(None if plan.seed is None else plan.seed * 1000 + thread)
    out: list[Event] = []
    for _ in range(count):
        if out and rng.random() < plan.duplicates:
            out.append(out[rng.randrange(len(out))])
            continue
        dims = {key: rng.choice(choices) for key, choices in plan.dimensions.items()}
        event_id = "%032x" % rng.getrandbits(128)  # noqa: UP031
        out.append(
            (
                rng.choice(plan.meters),
                float(rng.randint(plan.low, plan.high)),
                rng.choice(plan.customers),
                datetime.now(UTC),
                dims,
                event_id,
            )
        )
    return out


def produce(client: meterd.Client, events: list[Event], rate: float, errors: list[str]) -> None:
    """Meter ``events`` at ``rate`` per second (0 = as fast as possible)."""
    started = time.monotonic()
    for number, (meter, value, customer, when, dims, event_id) in enumerate(events):
        if rate > 0:
            ahead = started + number / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        try:
            client.meter(meter, value, customer, time=when, dimensions=dims or None, id=event_id)
        except meterd.InvalidInput as exc:
            errors.append(f"{exc.message}: {exc.errors}")
            return


def summary(stats: meterd.SenderStats, elapsed: float) -> dict[str, Any]:
    return {
        "sent": stats.enqueued,
        "accepted": stats.accepted,
        "duplicates": stats.duplicate,
        "rejected": stats.rejected,
        "conflicts": stats.conflict,
        "retried": stats.retried,
        "dropped": dict(stats.dropped),
        "pending": stats.pending,
        "elapsed_seconds": round(elapsed, 3),
        "events_per_second": round((stats.accepted + stats.duplicate) / elapsed, 1) if elapsed else 0.0,
    }


def run(client: meterd.Client, plan: Plan, show_progress: bool) -> tuple[dict[str, Any], list[str]]:
    """Generate, meter and flush; returns the summary and any validation errors."""
    shares = [plan.total // plan.threads + (1 if t < plan.total % plan.threads else 0) for t in range(plan.threads)]
    work = [generate(plan, t, n) for t, n in enumerate(shares)]
    errors: list[str] = []
    started = time.monotonic()
    producers = [
        threading.Thread(target=produce, args=(client, events, plan.rate / plan.threads, errors), name=f"simulate-{t}")
        for t, events in enumerate(work)
    ]
    for thread in producers:
        thread.start()
    watch(client, producers, plan.total, show_progress)
    client.flush(timeout=600)
    return summary(client.stats(), time.monotonic() - started), errors


def watch(client: meterd.Client, producers: list[threading.Thread], total: int, show_progress: bool) -> None:
    """Follow delivery on a progress bar until the producers are done and the queue is sent."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("delivered"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} ev/s"),
        TimeElapsedColumn(),
    )
    started = time.monotonic()
    with Progress(*columns, disable=not show_progress, transient=False) as progress:
        task = progress.add_task("simulate", total=total, rate="0")
        while True:
            stats = client.stats()
            done = stats.accepted + stats.duplicate + stats.rejected + stats.conflict + sum(stats.dropped.values())
            rate = done / max(time.monotonic() - started, 1e-9)
            progress.update(task, completed=min(done, total), rate=f"{rate:,.0f}")
            if done >= total or (not any(t.is_alive() for t in producers) and stats.pending == 0):
                break
            time.sleep(0.1)
        for thread in producers:
            thread.join()


@click.command()
@click.option("--url", envvar="METERD_URL", default="http://127.0.0.1:8080", show_default=True)
@click.option("--api-key", envvar="METERD_API_KEY", required=True, help="Or METERD_API_KEY.")
@click.option(
    "--meter",
    "meters",
    multiple=True,
    default=("api_calls",),
    show_default=True,
    help="A meter to use (repeat for several).",
)
@click.option("--customers", type=click.IntRange(1), default=10, show_default=True, help="How many customers.")
@click.option("--customer-prefix", default="customer-", show_default=True)
@click.option(
    "--dimension",
    "dimensions",
    multiple=True,
    metavar="KEY=V1|V2",
    help="A dimension and the values to choose from (repeatable).",
)
@click.option(
    "--value",
    "values",
    default="1",
    show_default=True,
    metavar="N or LOW-HIGH",
    help="Value of each event, or an integer range to draw from.",
)
@click.option("--total", type=click.IntRange(1), default=10_000, show_default=True, help="Events to meter.")
@click.option(
    "--rate",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Events per second over all threads (0: as fast as possible).",
)
@click.option("--threads", type=click.IntRange(1, 256), default=1, show_default=True)
@click.option(
    "--duplicates",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of events resent exactly (the server answers duplicate).",
)
@click.option("--spool", type=click.Path(dir_okay=False), default=None, help="Use a durable spool file.")
@click.option("--seed", type=int, default=None, help="Seed for reproducible runs.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON (and no progress bar).")
def simulate(
    url: str,
    api_key: str,
    meters: tuple[str, ...],
    customers: int,
    customer_prefix: str,
    dimensions: tuple[str, ...],
    values: str,
    total: int,
    rate: float,
    threads: int,
    duplicates: float,
    spool: str | None,
    seed: int | None,
    as_json: bool,
) -> None:
    """Generate usage with the SDK and report what the server did with it."""
    low, high = parse_values(values)
    plan = Plan(
        tuple(meters),
        tuple(f"{customer_prefix}{i}" for i in range(customers)),
        dict(parse_dimension(d) for d in dimensions),
        low,
        high,
        total,
        rate,
        threads,
        duplicates,
        seed,
    )
    try:
        client = meterd.Client(url, api_key, spool_path=spool, batching=meterd.Batching(max_queue_size=total + 1))
    except meterd.MeterdError as exc:
        raise click.ClickException(exc.message) from exc
    with client:
        result, errors = run(client, plan, show_progress=not as_json)
    if errors:
        raise click.ClickException(f"invalid events: {errors[0]}")
    if as_json:
        click.echo(json.dumps(result))
        return
    for key, value in result.items():
        click.echo(f"{key:>18}: {value}")


def parse_values(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    try:
        bounds = (int(low), int(high or low))
    except ValueError:
        raise click.BadParameter(f"expected N or LOW-HIGH, got {text!r}", param_hint="--value") from None
    if bounds[0] > bounds[1] or bounds[0] < 0:
        raise click.BadParameter(f"expected 0 <= LOW <= HIGH, got {text!r}", param_hint="--value")
    return bounds
