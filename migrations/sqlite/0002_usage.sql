-- amcctl store, version 2: what AMC reports about each instance's use.
-- Workflows, executions and schedules are keyed by AMC's own IDs within the
-- instance row that fetched them (two users may register the same AMC
-- instance; each sees what their own credentials fetched). Never edit this
-- file once released.

-- Discovery: what AMC says about an instance, when it says it.
ALTER TABLE amc_instances ADD COLUMN instance_type TEXT;
ALTER TABLE amc_instances ADD COLUMN customer_canonical_name TEXT;
ALTER TABLE amc_instances ADD COLUMN data_upload_account_id TEXT;

CREATE TABLE workflows (
    instance_id  TEXT NOT NULL REFERENCES amc_instances (id) ON DELETE CASCADE,
    workflow_id  TEXT NOT NULL,                  -- AMC's workflow ID
    sql_query    TEXT,
    synced_at    TEXT NOT NULL,
    PRIMARY KEY (instance_id, workflow_id)
) WITHOUT ROWID;

CREATE TABLE workflow_executions (
    instance_id         TEXT NOT NULL REFERENCES amc_instances (id) ON DELETE CASCADE,
    execution_id        TEXT NOT NULL,           -- AMC's workflowExecutionId
    workflow_id         TEXT,
    status              TEXT NOT NULL CHECK (status IN
                        ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'REJECTED')),
    execution_category  TEXT,
    created_at          TEXT NOT NULL,           -- AMC's createTime
    updated_at          TEXT,                    -- AMC's lastUpdatedTime
    duration_s          INTEGER,                 -- updated_at - created_at, finished executions only
    error               TEXT,
    synced_at           TEXT NOT NULL,
    PRIMARY KEY (instance_id, execution_id)
) WITHOUT ROWID;
CREATE INDEX workflow_executions_time ON workflow_executions (instance_id, created_at);
CREATE INDEX workflow_executions_workflow ON workflow_executions (instance_id, workflow_id, created_at);

CREATE TABLE workflow_schedules (
    instance_id           TEXT NOT NULL REFERENCES amc_instances (id) ON DELETE CASCADE,
    schedule_id           TEXT NOT NULL,         -- AMC's schedule ID
    workflow_id           TEXT,
    aggregation_period    TEXT,
    aggregation_hour_utc  INTEGER,
    enabled               INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    synced_at             TEXT NOT NULL,
    PRIMARY KEY (instance_id, schedule_id)
) WITHOUT ROWID;

-- The last successful `usage sync` of an instance: the next one starts from here.
CREATE TABLE usage_syncs (
    instance_id   TEXT PRIMARY KEY REFERENCES amc_instances (id) ON DELETE CASCADE,
    synced_at     TEXT NOT NULL,                 -- when the sync started
    window_start  TEXT NOT NULL                  -- the minCreationTime it asked for
);
