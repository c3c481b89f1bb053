"""Printing for the CLI: rich tables on a terminal, JSON or CSV for scripts."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def emit(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], *, fmt: str = "table", title: str | None = None
) -> None:
    """Print ``rows`` as a table (default), ``json`` or ``csv``."""
    if fmt == "json":
        print(json.dumps(list(rows), indent=2, default=str))
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else _text(row.get(c)) for c in columns))
    Console().print(table)


def _text(value: object) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def err(message: str) -> None:
    Console(stderr=True).print(message, markup=False, highlight=False)
