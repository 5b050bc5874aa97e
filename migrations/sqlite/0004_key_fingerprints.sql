-- amcctl store, version 4: key fingerprints. In a team store each user's
-- secrets are encrypted with that user's own key, so beside each ciphertext
-- the store records which key made it: `fp:` and the first 16 hex digits
-- of the SHA-256 of the key's 32 bytes (a fingerprint, never the key).
-- Rows written before this version keep NULL: "written before fingerprints",
-- the reader then simply tries its key (a CHECK passes NULL). Never edit
-- this file once released.

-- One fingerprint per login: its client secret, refresh token and cached
-- access token are always encrypted with one key.
ALTER TABLE credentials ADD COLUMN key_fingerprint TEXT
    CHECK (length(key_fingerprint) = 19 AND key_fingerprint LIKE 'fp:%');

-- The key of an instance's `encrypted_config`.
ALTER TABLE amc_instances ADD COLUMN settings_key_fingerprint TEXT
    CHECK (length(settings_key_fingerprint) = 19 AND settings_key_fingerprint LIKE 'fp:%');
