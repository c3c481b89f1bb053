"""The marketplace services bundled for the AWS surface, the native routes and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from meterd.core.awsmetering import TimeRules
from meterd.service.awskeys import AccessKeys
from meterd.service.awsmetering import Metering
from meterd.service.awsregistration import Registrations
from meterd.service.marketplace import Catalog
from meterd.service.meterd import Meterd
from meterd.service.sealing import SealerSource
from meterd.service.signing import SigningKeys


@dataclass(frozen=True, slots=True)
class Marketplace:
    """Everything the AWS surface and the marketplace routes need, built once per app."""

    keys: AccessKeys
    catalog: Catalog
    signing: SigningKeys
    metering: Metering
    registrations: Registrations


def build_marketplace(meterd: Meterd, secret_key: str | None, rules: TimeRules) -> Marketplace:
    sealers = SealerSource(meterd.store, secret_key)

    def clock() -> int:
        return meterd.clock()

    catalog = Catalog(meterd.store, clock)
    signing = SigningKeys(meterd.store, sealers, clock)
    metering = Metering(meterd, catalog, rules)
    registrations = Registrations(metering, catalog, signing)
    return Marketplace(AccessKeys(meterd.store, sealers, clock), catalog, signing, metering, registrations)
