"""Usage reports: run the queries of a dense series report and fold them into series (see core.series)."""

from __future__ import annotations

from collections.abc import Sequence

from meterd.core.query import QuerySpec
from meterd.core.series import Series, build_series, report_specs
from meterd.service.meterd import Meterd


async def usage_series(meterd: Meterd, tenant: str, spec: QuerySpec, meters: Sequence[str]) -> dict[str, list[Series]]:
    """Series per meter of ``meters`` for ``spec`` (window required): per window, totals and change."""
    specs = report_specs(spec)
    window_rows = await meterd.query(tenant, specs.windows)
    total_rows = await meterd.query(tenant, specs.totals)
    previous_rows = await meterd.query(tenant, specs.previous) if specs.previous is not None else []
    return build_series(meters, spec, window_rows, total_rows, previous_rows)
