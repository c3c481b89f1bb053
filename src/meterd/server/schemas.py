"""Pydantic request models of the native API, and their translation into core objects."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from meterd.core.errors import FieldError, InvalidInput
from meterd.core.events import check_time
from meterd.core.models import Aggregation, Scope
from meterd.core.query import DimensionFilter, FilterOp, QuerySpec, Take
from meterd.core.windows import Window

Scalar = str | int | float | bool | None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerIn(Strict):
    id: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=256)
    traits: dict[str, Scalar] = Field(default_factory=dict, max_length=64)
    enabled: bool = True


class CustomerUpdate(Strict):
    name: str | None = Field(default=None, max_length=256)
    email: str | None = Field(default=None, max_length=256)
    traits: dict[str, Scalar] = Field(default_factory=dict, max_length=64)
    enabled: bool = True


class MeterUpdate(Strict):
    aggregation: Aggregation = Aggregation.SUM
    unit: str | None = Field(default=None, max_length=64)
    description: str | None = Field(default=None, max_length=1024)
    unique_dimension: str | None = Field(default=None, max_length=64)
    properties: dict[str, Any] = Field(default_factory=dict)


class MeterIn(MeterUpdate):
    key: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-/@]*$")


class KeyIn(Strict):
    name: str = Field(min_length=1, max_length=128)
    scopes: list[Scope] = Field(min_length=1)


class VoidIn(Strict):
    reason: str = Field(min_length=1, max_length=1024)


class AmendIn(Strict):
    reason: str = Field(min_length=1, max_length=1024)
    event: dict[str, Any]


class FilterIn(Strict):
    key: str = Field(min_length=1, max_length=64)
    op: FilterOp = FilterOp.EQ
    values: list[Scalar] = Field(default_factory=list, max_length=1000)
    value: Scalar = None


class FiltersIn(Strict):
    customers: list[str] | None = Field(default=None, max_length=10_000)
    dimensions: list[FilterIn] = Field(default_factory=list, max_length=32)


class TakeIn(Strict):
    limit: int = Field(ge=1, le=10_000)
    order: Literal["asc", "desc"] = "desc"


class QueryIn(Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    meters: list[str] = Field(default_factory=list, max_length=100)
    meter: str | None = None
    from_: str | int | float = Field(alias="from")
    to: str | int | float
    window: Window = Window.NONE
    time_zone: str = "UTC"
    group_by: list[str] = Field(default_factory=list, max_length=8)
    filters: FiltersIn = Field(default_factory=FiltersIn)
    aggregation: Aggregation | None = None
    unique_dimension: str | None = None
    take: TakeIn | None = None
    dense: bool = False
    attribute_to_owner: bool = False

    def spec(self) -> QuerySpec:
        """The core query this request asks for."""
        errors: list[FieldError] = []
        start = check_time(self.from_, "from", errors)
        end = check_time(self.to, "to", errors)
        if errors:
            raise InvalidInput("the query is invalid", errors)
        meters = tuple(self.meters) + ((self.meter,) if self.meter else ())
        filters = tuple(
            DimensionFilter(f.key, f.op, tuple(f.values) if f.values else (f.value,)) for f in self.filters.dimensions
        )
        take = Take(self.take.limit, self.take.order == "desc") if self.take else None
        customers = tuple(self.filters.customers) if self.filters.customers is not None else None
        return QuerySpec(
            meters,
            start,
            end,
            self.window,
            self.time_zone,
            tuple(self.group_by),
            customers,
            filters,
            self.aggregation,
            self.unique_dimension,
            take,
            self.dense,
        )
