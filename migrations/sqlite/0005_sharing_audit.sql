-- amcctl store, version 5: sharing, administrators and the audit trail.
-- Never edit this file once released.

-- An administrator adds and removes users and may act on every instance.
-- (In the team store, administrators are the members of the database role
-- `amcctl_admin` instead.)
ALTER TABLE users ADD COLUMN is_admin INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1));

-- An instance shared by its owner with another user, as viewer or operator.
CREATE TABLE instance_shares (
    instance_id  TEXT NOT NULL REFERENCES amc_instances (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         TEXT NOT NULL CHECK (role IN ('viewer', 'operator')),
    granted_by   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (instance_id, user_id)
);
CREATE INDEX instance_shares_user ON instance_shares (user_id);

-- One entry for every command that changed the store. Names rather than
-- references: the trail outlives the users and instances it mentions.
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    command      TEXT NOT NULL,
    object_kind  TEXT NOT NULL
                 CHECK (object_kind IN ('instance', 'account', 'user', 'login', 'store')),
    object_id    TEXT,
    object_name  TEXT,
    instance_id  TEXT,          -- the instance's row id when the entry is about one
    summary      TEXT NOT NULL
);
CREATE INDEX audit_log_instance ON audit_log (instance_id, id);
CREATE INDEX audit_log_at ON audit_log (at);

-- The trail is append-only.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
