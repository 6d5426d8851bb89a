-- Accounts, permissions, the audit log and the server's own certificates (DESIGN §4, §5).
-- Times are Unix nanoseconds (UTC).

CREATE TABLE users (
    name           TEXT PRIMARY KEY NOT NULL,
    -- Argon2id in PHC string form.
    password_hash  TEXT NOT NULL,
    admin          INTEGER NOT NULL DEFAULT 0,
    disabled       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);

CREATE TABLE teams (
    name        TEXT PRIMARY KEY NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE team_members (
    team        TEXT NOT NULL REFERENCES teams (name) ON DELETE CASCADE,
    user_name   TEXT NOT NULL REFERENCES users (name),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (team, user_name)
);

-- One grant per (repository pattern, subject). `repository` is a GUN or `prefix/*`.
CREATE TABLE grants (
    repository    TEXT NOT NULL,
    subject_kind  TEXT NOT NULL CHECK (subject_kind IN ('user', 'team')),
    subject       TEXT NOT NULL,
    access        TEXT NOT NULL CHECK (access IN ('read', 'write', 'admin')),
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (repository, subject_kind, subject)
);

-- Who created a repository and whether anonymous callers may read it. The row outlives a
-- DELETE of the trust data, so a deleted repository keeps its owner and visibility.
CREATE TABLE repository_settings (
    gun         TEXT PRIMARY KEY NOT NULL,
    public      INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Users' signing keys: certificates the server issued (client bundles) or that users
-- registered. `public_sha256` is the SHA-256 of the SubjectPublicKeyInfo, so a delegation
-- key is traced to its owner whether it is listed as a certificate or as a bare key.
CREATE TABLE user_keys (
    key_id           TEXT PRIMARY KEY NOT NULL,
    -- The ID of the bare public key, which the notary CLI prints for certificates.
    canonical_key_id TEXT NOT NULL,
    user_name        TEXT NOT NULL REFERENCES users (name),
    public_sha256    TEXT NOT NULL,
    certificate_pem  TEXT NOT NULL,
    label            TEXT NOT NULL,
    issued           INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    revoked_at       INTEGER
);
CREATE INDEX user_keys_public ON user_keys (public_sha256);
CREATE INDEX user_keys_user ON user_keys (user_name);

-- Personal access tokens: only the SHA-256 of the secret is kept.
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    user_name   TEXT NOT NULL REFERENCES users (name),
    name        TEXT NOT NULL,
    digest      BLOB NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    revoked_at  INTEGER
);
CREATE INDEX tokens_user ON tokens (user_name);

CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    repository   TEXT,
    -- JSON object.
    detail       TEXT NOT NULL,
    remote_addr  TEXT NOT NULL
);

-- Certificates of the server's own keys (the user CA); the keys themselves are sealed in
-- private_keys under the GUN '' like every other private key.
CREATE TABLE server_certificates (
    name             TEXT PRIMARY KEY NOT NULL,
    key_id           TEXT NOT NULL,
    certificate_pem  TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);
