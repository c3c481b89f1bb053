"""meterd: self-hosted usage metering. ``import meterd`` gives the SDK only (no server, CLI or drivers)."""

__version__ = "0.1.0"
