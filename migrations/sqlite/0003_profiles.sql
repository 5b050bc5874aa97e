-- amcctl store, version 3: profiles. A user holds several Login-with-Amazon
-- grants, each under a profile name; every login made before this version
-- becomes the profile `default`, secrets unchanged. Never edit this file
-- once released.

CREATE TABLE credentials_v3 (
    user_id                TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    profile                TEXT NOT NULL CHECK (length(profile) BETWEEN 1 AND 64),
    client_id              TEXT NOT NULL,
    client_secret_enc      TEXT NOT NULL,
    refresh_token_enc      TEXT NOT NULL,
    region                 TEXT NOT NULL CHECK (region IN ('na', 'eu', 'fe')),
    access_token_enc       TEXT,
    access_token_expires   TEXT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    PRIMARY KEY (user_id, profile)
);
INSERT INTO credentials_v3 (user_id, profile, client_id, client_secret_enc, refresh_token_enc,
        region, access_token_enc, access_token_expires, created_at, updated_at)
    SELECT user_id, 'default', client_id, client_secret_enc, refresh_token_enc,
        region, access_token_enc, access_token_expires, created_at, updated_at
    FROM credentials;
DROP TABLE credentials;
ALTER TABLE credentials_v3 RENAME TO credentials;

-- The profile a user's commands use when none is named (`auth switch`);
-- NULL means `default`.
ALTER TABLE users ADD COLUMN default_profile TEXT;

-- The profile whose grant serves an account's instances (discovery records
-- the one it used; `account edit --profile` changes it). It names a profile
-- of each instance's owner; NULL means the owner's default profile.
ALTER TABLE amc_accounts ADD COLUMN profile TEXT;
