-- amcctl store, version 1.
-- Table and column names follow the web service whose registry this tool
-- takes over, so rows can move between the two. Timestamps are RFC 3339 UTC
-- text with second precision ("2026-11-24T18:00:00Z"), which sorts correctly.
-- Never edit this file once released: add 0002_….sql instead.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    created_at  TEXT NOT NULL
);

CREATE TABLE amc_accounts (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL UNIQUE,          -- the entity ID AMC calls the advertiser ID
    account_name    TEXT NOT NULL,
    advertiser_id   TEXT,
    country_code    TEXT NOT NULL DEFAULT 'US',
    marketplace_id  TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX amc_accounts_name ON amc_accounts (account_name);

CREATE TABLE amc_instances (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    instance_id        TEXT NOT NULL,             -- AMC's own ID, used in every API call
    name               TEXT NOT NULL,
    description        TEXT,
    region             TEXT NOT NULL CHECK (region IN ('na', 'eu', 'fe')),
    account_id         TEXT NOT NULL REFERENCES amc_accounts (id) ON DELETE RESTRICT,
    is_active          INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    status             TEXT NOT NULL DEFAULT 'PENDING'
                       CHECK (status IN ('PENDING', 'ACTIVE', 'INACTIVE', 'ERROR')),
    encrypted_config   TEXT,
    api_endpoint       TEXT,
    last_health_check  TEXT,
    health_status      TEXT CHECK (health_status IN ('HEALTHY', 'UNHEALTHY', 'ERROR')),
    health_error       TEXT,
    health_latency_ms  INTEGER,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    UNIQUE (user_id, instance_id),
    CHECK ((status = 'INACTIVE') = (is_active = 0))
);
CREATE INDEX amc_instances_instance_id ON amc_instances (instance_id);
CREATE INDEX amc_instances_name ON amc_instances (name);
CREATE INDEX amc_instances_account ON amc_instances (account_id);

CREATE TABLE instance_brands (
    instance_id  TEXT NOT NULL REFERENCES amc_instances (id) ON DELETE CASCADE,
    brand_name   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (instance_id, brand_name)
) WITHOUT ROWID;
CREATE INDEX instance_brands_brand ON instance_brands (brand_name);

CREATE TABLE health_checks (
    id           INTEGER PRIMARY KEY,
    instance_id  TEXT NOT NULL REFERENCES amc_instances (id) ON DELETE CASCADE,
    checked_at   TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('HEALTHY', 'UNHEALTHY', 'ERROR')),
    http_status  INTEGER,
    latency_ms   INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 1,
    error        TEXT
);
CREATE INDEX health_checks_instance_time ON health_checks (instance_id, checked_at);
CREATE INDEX health_checks_time ON health_checks (checked_at);

-- Login-with-Amazon credentials of a user; every secret is a Fernet token.
CREATE TABLE credentials (
    user_id                TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    client_id              TEXT NOT NULL,
    client_secret_enc      TEXT NOT NULL,
    refresh_token_enc      TEXT NOT NULL,
    region                 TEXT NOT NULL CHECK (region IN ('na', 'eu', 'fe')),
    access_token_enc       TEXT,
    access_token_expires   TEXT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);
