"""InfluxData usage-client payloads: server registrations, product stats and anonymous usage snapshots.

Field problems are FieldErrors whose path is the client's field name (``cluster_id``, ``stats[0].name``) and
whose message reads like the client's own fixtures ("ClusterID can not be blank."). Each number among a
stat's or snapshot's ``values`` becomes one usage event; its tags and non-numeric values become dimensions.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.events import DEFAULT_LIMITS, NAME_RE, Limits, check_dimensions
from meterd.core.models import Dimensions, Scalar, UsageEvent

SURFACE = "influx"
ANONYMOUS = "anonymous"
MAX_FIELD = 256
NAME_CHARS = re.compile(r"[A-Za-z0-9_.:\-/@]+")
PRODUCT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
SERVER_FIELDS = (
    ("cluster_id", "ClusterID"),
    ("server_id", "ServerID"),
    ("host", "Host"),
    ("product", "Product"),
    ("version", "Version"),
)


@dataclass(frozen=True, slots=True)
class Server:
    """A server registration: upserted by (cluster_id, server_id)."""

    cluster_id: str
    server_id: str
    host: str
    product: str
    version: str


@dataclass(frozen=True, slots=True)
class Failure:
    """A record that could not be translated: what was sent and why."""

    raw: str
    errors: tuple[FieldError, ...]

    @property
    def message(self) -> str:
        return "; ".join(f"{e.path}: {e.message}" for e in self.errors)


@dataclass(slots=True)
class Batch:
    """The events of a request, and the records that failed (kept and reported, never dropped)."""

    events: list[UsageEvent] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def errors(self) -> list[FieldError]:
        return [e for f in self.failures for e in f.errors]


def raw_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True, default=repr)


def check_text(data: Mapping[str, Any], key: str, label: str, errors: list[FieldError]) -> str:
    """A required string field, with the client's wording."""
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        errors.append(FieldError(key, f"{label} can not be blank."))
        return ""
    if not isinstance(value, str):
        errors.append(FieldError(key, f"{label} must be a string."))
        return ""
    if len(value) > MAX_FIELD:
        errors.append(FieldError(key, f"{label} is too long (at most {MAX_FIELD} characters)."))
    return value


def check_product(product: str) -> str:
    """The product of a stats or usage path."""
    if not PRODUCT_RE.match(product):
        message = "Product must be 1 to 64 letters, digits, '_', '.' or '-'."
        raise InvalidInput(message, [FieldError("product", message)])
    return product


def check_server(data: object) -> Server:
    """A server registration body; every blank field is reported."""
    if not isinstance(data, Mapping):
        raise InvalidInput("the body must be a JSON object", [FieldError("body", "must be a JSON object.")])
    errors: list[FieldError] = []
    values = [check_text(data, key, label, errors) for key, label in SERVER_FIELDS]
    if errors:
        raise InvalidInput("the server is invalid", errors)
    return Server(*values)


def stats_batch(
    product: str, data: object, *, customer: str, now: int, batch_id: str, limits: Limits = DEFAULT_LIMITS
) -> Batch:
    """``{"cluster_id", "server_id", "stats": [{"name", "tags", "values"}]}`` as events, one per numeric value."""
    if not isinstance(data, Mapping):
        raise InvalidInput("the body must be a JSON object", [FieldError("body", "must be a JSON object.")])
    errors: list[FieldError] = []
    cluster = check_text(data, "cluster_id", "ClusterID", errors)
    server = check_text(data, "server_id", "ServerID", errors)
    stats = data.get("stats")
    if not isinstance(stats, list):
        errors.append(FieldError("stats", "Stats must be a list."))
    if errors:
        raise InvalidInput("the stats are invalid", errors)
    assert isinstance(stats, list)
    batch = Batch()
    context: Dimensions = {"cluster_id": cluster, "server_id": server}
    for index, stat in enumerate(stats):
        raw = raw_json({"product": product, "cluster_id": cluster, "server_id": server, "stat": stat})
        path = f"stats[{index}]"
        name = stat.get("name") if isinstance(stat, Mapping) else None
        prefix = f"{product}.{name}" if isinstance(name, str) else product
        _translate(batch, stat, path, prefix, context, customer, now, f"{batch_id}.{index}", raw, limits, named=True)
    return batch


def usage_batch(
    product: str, data: object, *, customer: str, now: int, batch_id: str, limits: Limits = DEFAULT_LIMITS
) -> Batch:
    """A bare array of ``{"tags", "values"}`` snapshots as events named ``<product>.usage.<value>``."""
    if not isinstance(data, list):
        message = "must be a JSON array of usage snapshots."
        raise InvalidInput("the body must be a JSON array", [FieldError("body", message)])
    batch = Batch()
    for index, snapshot in enumerate(data):
        raw = raw_json({"product": product, "snapshot": snapshot})
        prefix = f"{product}.usage"
        _translate(batch, snapshot, f"[{index}]", prefix, {}, customer, now, f"{batch_id}.{index}", raw, limits)
    return batch


def _translate(
    batch: Batch,
    record: object,
    path: str,
    prefix: str,
    context: Dimensions,
    customer: str,
    now: int,
    id_prefix: str,
    raw: str,
    limits: Limits,
    *,
    named: bool = False,
) -> None:
    """One stat or snapshot: its events go to ``batch.events``, or the whole record to ``batch.failures``."""
    errors: list[FieldError] = []
    if not isinstance(record, Mapping):
        batch.failures.append(Failure(raw, (FieldError(path, "must be an object."),)))
        return
    if named:
        name = check_text(record, "name", "Name", errors)
        if name and not NAME_CHARS.fullmatch(name):
            errors.append(FieldError("name", "Name may use letters, digits and _ . : - / @ only."))
    tags = _tags(record.get("tags"), errors)
    numbers, labels = _values(record.get("values"), prefix, limits, errors)
    dimensions = _merge(tags, labels, context, errors)
    dimensions = check_dimensions(dimensions, "tags", errors, limits)
    if errors:
        batch.failures.append(Failure(raw, tuple(FieldError(f"{path}.{e.path}", e.message) for e in errors)))
        return
    for position, (meter, value) in enumerate(numbers):
        event_id = f"{id_prefix}.{position}"
        batch.events.append(UsageEvent(event_id, meter, customer, now, value, dimensions, None, SURFACE, raw))


def _tags(value: object, errors: list[FieldError]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        errors.append(FieldError("tags", "Tags must be an object of strings."))
        return {}
    tags: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, str):
            tags[str(key)] = item
        else:
            errors.append(FieldError(f"tags.{key}", "Tag values must be strings."))
    return tags


def _values(
    value: object, prefix: str, limits: Limits, errors: list[FieldError]
) -> tuple[list[tuple[str, float]], dict[str, Scalar]]:
    """(meter, number) per numeric value; strings, booleans and nulls are labels."""
    if not isinstance(value, Mapping) or not value:
        errors.append(FieldError("values", "Values can not be blank."))
        return [], {}
    numbers: list[tuple[str, float]] = []
    labels: dict[str, Scalar] = {}
    for key, item in sorted(value.items()):
        if isinstance(item, bool) or item is None or isinstance(item, str):
            labels[str(key)] = item
        elif isinstance(item, int | float) and math.isfinite(item):
            meter = f"{prefix}.{key}"
            if len(meter) > limits.max_name or not NAME_RE.match(meter):
                errors.append(FieldError(f"values.{key}", f"makes the meter name {meter[:80]!r}, which is invalid."))
            numbers.append((meter, float(item)))
        else:
            errors.append(FieldError(f"values.{key}", "Values must be numbers, strings, booleans or null."))
    if not numbers and not errors:
        errors.append(FieldError("values", "Values must hold at least one number."))
    return numbers, labels


def _merge(
    tags: dict[str, str], labels: dict[str, Scalar], context: Dimensions, errors: list[FieldError]
) -> Dimensions:
    """Tags, non-numeric values and the request's context as one set of dimensions; a key may not disagree."""
    merged: Dimensions = {}
    for source, items in (("tags", tags), ("values", labels), ("", context)):
        for key, item in items.items():
            if key in merged and merged[key] != item:
                where = f"{source}.{key}" if source else key
                errors.append(FieldError(where, f"disagrees with another {key!r} of the same record."))
            merged[key] = item
    return merged
