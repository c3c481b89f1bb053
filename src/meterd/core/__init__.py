"""The pure domain of meterd: models, validation, identity, time windows, aggregation, errors (stdlib only)."""
