-- meterd SQLite schema, version 1.
-- Usage events live in one append-only table keyed by an ingest sequence; identity (tenant, surface, id) is
-- found through a 64-bit hash (events_h, not unique: a true hash collision is verified on the full id).
-- Rollups are an exact cache of the live events with seq <= rollup_state.watermark (see sqlite_rollup.py).

CREATE TABLE tenants (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at);

CREATE TABLE customers (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT,
    email TEXT,
    traits TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE meters (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    aggregation TEXT NOT NULL,
    unit TEXT,
    description TEXT,
    unique_dimension TEXT,
    properties TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;

-- Interned names: a meter of a tenant (mid) and a customer of such a meter (sid). Never deleted.
CREATE TABLE meter_ids (
    mid INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    meter TEXT NOT NULL,
    UNIQUE (tenant, meter)
);

CREATE TABLE series_ids (
    sid INTEGER PRIMARY KEY,
    mid INTEGER NOT NULL,
    customer TEXT NOT NULL,
    UNIQUE (mid, customer)
);

-- value has no declared type so that -0.0 keeps its sign; dims is NULL when empty.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    h INTEGER NOT NULL,
    mid INTEGER NOT NULL,
    sid INTEGER NOT NULL,
    surface TEXT NOT NULL,
    id TEXT NOT NULL,
    time INTEGER NOT NULL,
    value NOT NULL,
    dims TEXT,
    end_time INTEGER,
    raw TEXT,
    ingested_at INTEGER NOT NULL,
    live INTEGER NOT NULL DEFAULT 1,
    replaces TEXT,
    replaced_by TEXT
);
CREATE INDEX events_h ON events (h);
-- The raw query path: live events of a meter in time order, covering what queries read.
CREATE INDEX events_q ON events (mid, time, sid, value, dims, live) WHERE live = 1;

CREATE TABLE corrections (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    event_id TEXT NOT NULL,
    surface TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    key_id TEXT,
    created_at INTEGER NOT NULL,
    replacement_id TEXT
);
CREATE INDEX corrections_by_event ON corrections (tenant, surface, event_id);

CREATE TABLE rejections (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    surface TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    raw TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    meter TEXT,
    event_id TEXT,
    errors TEXT NOT NULL
);
CREATE INDEX rejections_by_tenant ON rejections (tenant, id);
CREATE INDEX rejections_by_time ON rejections (tenant, created_at);

CREATE TABLE ingest_counts (
    tenant TEXT NOT NULL,
    meter TEXT NOT NULL,
    surface TEXT NOT NULL,
    outcome TEXT NOT NULL,
    minute INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (tenant, minute, meter, surface, outcome)
) WITHOUT ROWID;

CREATE TABLE objects (
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (tenant, kind, key)
) WITHOUT ROWID;

-- Rollups: sum, count, min, max of live events per (meter, bucket, customer), hourly and daily (UTC), and per
-- value of each low-cardinality dimension key (dv is the value as JSON text; 'null' when absent).
CREATE TABLE rollup_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    watermark INTEGER NOT NULL
);
INSERT INTO rollup_state (id, watermark) VALUES (1, 0);

CREATE TABLE roll_hour (
    mid INTEGER NOT NULL, b INTEGER NOT NULL, sid INTEGER NOT NULL,
    s NOT NULL, c INTEGER NOT NULL, mn NOT NULL, mx NOT NULL,
    PRIMARY KEY (mid, b, sid)
) WITHOUT ROWID;

CREATE TABLE roll_day (
    mid INTEGER NOT NULL, b INTEGER NOT NULL, sid INTEGER NOT NULL,
    s NOT NULL, c INTEGER NOT NULL, mn NOT NULL, mx NOT NULL,
    PRIMARY KEY (mid, b, sid)
) WITHOUT ROWID;

CREATE TABLE roll_hour_dim (
    mid INTEGER NOT NULL, dk TEXT NOT NULL, b INTEGER NOT NULL, dv TEXT NOT NULL, sid INTEGER NOT NULL,
    s NOT NULL, c INTEGER NOT NULL, mn NOT NULL, mx NOT NULL,
    PRIMARY KEY (mid, dk, b, dv, sid)
) WITHOUT ROWID;

CREATE TABLE roll_day_dim (
    mid INTEGER NOT NULL, dk TEXT NOT NULL, b INTEGER NOT NULL, dv TEXT NOT NULL, sid INTEGER NOT NULL,
    s NOT NULL, c INTEGER NOT NULL, mn NOT NULL, mx NOT NULL,
    PRIMARY KEY (mid, dk, b, dv, sid)
) WITHOUT ROWID;

-- Dimension keys seen per meter: state 'pending' (not yet rolled up), 'rolled', or 'high' (too many values to
-- roll up); dim_values lists the values (JSON text) of keys that are not 'high'.
CREATE TABLE dim_keys (
    mid INTEGER NOT NULL,
    dk TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (mid, dk)
) WITHOUT ROWID;

CREATE TABLE dim_values (
    mid INTEGER NOT NULL,
    dk TEXT NOT NULL,
    dv TEXT NOT NULL,
    PRIMARY KEY (mid, dk, dv)
) WITHOUT ROWID;
