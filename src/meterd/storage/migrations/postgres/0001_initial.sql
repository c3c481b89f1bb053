-- meterd on PostgreSQL: the initial schema. Text keys use COLLATE "C" so orderings match Python's.

CREATE TABLE tenants (
    id         text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL,
    created_at bigint NOT NULL
);

CREATE TABLE api_keys (
    id           text COLLATE "C" PRIMARY KEY,
    tenant       text COLLATE "C" NOT NULL,
    name         text NOT NULL,
    scopes       text[] NOT NULL,
    secret_hash  text NOT NULL,
    created_at   bigint NOT NULL,
    last_used_at bigint,
    revoked_at   bigint,
    ord          bigserial NOT NULL
);
CREATE INDEX api_keys_tenant ON api_keys (tenant, created_at, ord);

CREATE TABLE customers (
    tenant     text COLLATE "C" NOT NULL,
    id         text COLLATE "C" NOT NULL,
    name       text,
    email      text,
    traits     json NOT NULL,
    enabled    boolean NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE meters (
    tenant           text COLLATE "C" NOT NULL,
    key              text COLLATE "C" NOT NULL,
    aggregation      text NOT NULL,
    unit             text,
    description      text,
    unique_dimension text,
    properties       json NOT NULL,
    created_at       bigint NOT NULL,
    PRIMARY KEY (tenant, key)
);

-- Usage events. ``key`` is a 64-bit hash of (tenant, surface, id) with open addressing on collision
-- (probe 0, 1, ...): a compact unique key is much cheaper to maintain than a unique index on the text.
-- ``seq`` is (ingest batch << 24) + position in the batch. ``dims`` is JSON text as ingested (not parsed on
-- insert); ``fdims`` is set only when a key name holds NUL (which PostgreSQL's JSON functions reject): the same
-- object with those names changed, which the rollup reads instead.
CREATE TABLE events (
    key         bigint NOT NULL,
    seq         bigint NOT NULL,
    tenant      text COLLATE "C" NOT NULL,
    surface     text COLLATE "C" NOT NULL,
    id          text COLLATE "C" NOT NULL,
    meter       text COLLATE "C" NOT NULL,
    customer    text COLLATE "C" NOT NULL,
    time        bigint NOT NULL,
    value       double precision NOT NULL,
    dims        text NOT NULL,
    fdims       text,
    end_time    bigint,
    raw         text,
    fp          text NOT NULL,
    ingested_at bigint NOT NULL,
    voided      boolean NOT NULL DEFAULT false,
    replaces    text,
    replaced_by text
);
CREATE SEQUENCE events_seq OWNED BY events.seq;
CREATE UNIQUE INDEX events_key ON events (key);
CREATE INDEX events_series ON events (tenant, meter, customer, time);
CREATE UNIQUE INDEX events_seq_idx ON events (seq);

-- Ingest batches whose events are not yet folded into ``rollup`` (one row per batch that stored any event:
-- its events are those with seq >> 24 = batch). Queries read rollup + the events of pending batches in one
-- snapshot, so the cache stays exact; the fold moves whole batches into ``rollup`` in one transaction.
CREATE TABLE pending (
    batch  bigint PRIMARY KEY,
    tenant text COLLATE "C" NOT NULL,
    n      integer NOT NULL
);

-- Exact pre-aggregates of live, folded events: per customer by UTC hour (lvl 1) and day (lvl 2), and per
-- (dimension key, value) by UTC day for the meter's low-cardinality keys (dkey <> ''). ``dval`` is the value's
-- JSON text exactly as ingested ('null' when missing), so group labels come back with their Python type.
CREATE TABLE rollup (
    tenant   text COLLATE "C" NOT NULL,
    meter    text COLLATE "C" NOT NULL,
    lvl      smallint NOT NULL,
    dkey     text COLLATE "C" NOT NULL,
    customer text COLLATE "C" NOT NULL,
    bucket   bigint NOT NULL,
    dval     text COLLATE "C" NOT NULL,
    n        bigint NOT NULL,
    total    double precision NOT NULL,
    lo       double precision,
    hi       double precision,
    PRIMARY KEY (tenant, meter, lvl, dkey, customer, bucket, dval)
);

-- Dimension keys seen per meter; ``rolled`` while the key has few distinct values (its rollup is complete).
CREATE TABLE rollup_keys (
    tenant  text COLLATE "C" NOT NULL,
    meter   text COLLATE "C" NOT NULL,
    dkey    text COLLATE "C" NOT NULL,
    rolled  boolean NOT NULL,
    nvalues integer NOT NULL,
    PRIMARY KEY (tenant, meter, dkey)
);
CREATE TABLE rollup_values (
    tenant text COLLATE "C" NOT NULL,
    meter  text COLLATE "C" NOT NULL,
    dkey   text COLLATE "C" NOT NULL,
    dval   text COLLATE "C" NOT NULL,
    cls    text COLLATE "C" NOT NULL,
    PRIMARY KEY (tenant, meter, dkey, dval)
);

-- A dimension value as rollups keep it: its JSON text ('null' when missing); NULL when it cannot be rolled up
-- (the rollup reads ``fdims`` for events whose text holds \u0000, where such values are ``[]``).
CREATE FUNCTION dval(v json) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN v IS NULL THEN 'null' WHEN json_typeof(v) = 'array' THEN NULL ELSE v::text END $$;
-- Values in one class are equal in Python (1 = 1.0 = true): a key whose values clash is not rolled up.
CREATE FUNCTION dcls(d text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN d = 'true' THEN 'n:1' WHEN d = 'false' THEN 'n:0' WHEN d = 'null' THEN 'null'
               WHEN left(d, 1) = '"' THEN 's:' || d ELSE 'n:' || trim_scale(d::numeric)::text END $$;

CREATE TABLE corrections (
    id             bigserial PRIMARY KEY,
    tenant         text COLLATE "C" NOT NULL,
    event_id       text COLLATE "C" NOT NULL,
    surface        text COLLATE "C" NOT NULL,
    action         text NOT NULL,
    reason         text NOT NULL,
    key_id         text,
    created_at     bigint NOT NULL,
    replacement_id text
);
CREATE INDEX corrections_tenant ON corrections (tenant, surface, id);

CREATE TABLE rejections (
    id         bigserial PRIMARY KEY,
    tenant     text COLLATE "C" NOT NULL,
    surface    text COLLATE "C" NOT NULL,
    code       text NOT NULL,
    message    text COLLATE "C" NOT NULL,
    raw        text NOT NULL,
    created_at bigint NOT NULL,
    meter      text,
    event_id   text,
    errors     json NOT NULL
);
CREATE INDEX rejections_tenant ON rejections (tenant, id);
CREATE INDEX rejections_time ON rejections (tenant, created_at);

-- Ingest outcome counts: appended per transaction (no hot row to contend on), summed when read.
CREATE TABLE ingest_counts (
    tenant  text COLLATE "C" NOT NULL,
    meter   text COLLATE "C" NOT NULL,
    surface text COLLATE "C" NOT NULL,
    outcome text NOT NULL,
    minute  bigint NOT NULL,
    n       bigint NOT NULL
);
CREATE INDEX ingest_counts_tenant ON ingest_counts (tenant, minute);

CREATE TABLE objects (
    tenant text COLLATE "C" NOT NULL,
    kind   text COLLATE "C" NOT NULL,
    key    text COLLATE "C" NOT NULL,
    body   json NOT NULL,
    PRIMARY KEY (tenant, kind, key)
);
