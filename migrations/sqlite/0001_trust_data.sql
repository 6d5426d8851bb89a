-- Trust data, the changefeed and server-managed keys (DESIGN §4).
-- Times are Unix nanoseconds (UTC).

-- One row per repository that has ever held data. `generation` counts accepted commits
-- and is the optimistic-concurrency token of an update: a commit names the generation it
-- was validated against and fails if another commit came first.
CREATE TABLE repositories (
    gun         TEXT PRIMARY KEY NOT NULL,
    generation  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Every accepted version of every role, byte for byte as stored and served.
CREATE TABLE tuf_files (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    gun         TEXT NOT NULL,
    role        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    data        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (gun, role, version)
);
CREATE INDEX tuf_files_checksum ON tuf_files (gun, role, sha256);

-- Files of deleted repositories: DELETE takes a repository out of service, but its
-- history is kept, tied to the changefeed record of the deletion.
CREATE TABLE tuf_files_archive (
    id           INTEGER PRIMARY KEY,
    deletion_id  INTEGER NOT NULL,
    gun          TEXT NOT NULL,
    role         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    data         BLOB NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX tuf_files_archive_gun ON tuf_files_archive (gun, deletion_id);

-- Notary's changefeed: one `update` row per stored timestamp, one `deletion` row per
-- effective delete.
CREATE TABLE changefeed (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  INTEGER NOT NULL,
    gun         TEXT NOT NULL,
    version     INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    category    TEXT NOT NULL CHECK (category IN ('update', 'deletion'))
);
CREATE INDEX changefeed_gun ON changefeed (gun, id);

-- Key-encryption keys: derived from a passphrase with Argon2id; only the salt, the
-- parameters and a check value are stored.
CREATE TABLE keks (
    id          TEXT PRIMARY KEY NOT NULL,
    salt        BLOB NOT NULL,
    m_cost      INTEGER NOT NULL,
    t_cost      INTEGER NOT NULL,
    p_cost      INTEGER NOT NULL,
    check_value BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Server-managed private keys, sealed with AES-256-GCM under a KEK. `last_used` is NULL
-- until the key first signs: such a key is pending and is handed out again by the next
-- create (Notary's pending-key rule). Keys are never deleted.
CREATE TABLE private_keys (
    key_id      TEXT PRIMARY KEY NOT NULL,
    gun         TEXT NOT NULL,
    role        TEXT NOT NULL,
    algorithm   TEXT NOT NULL,
    public      BLOB NOT NULL,
    sealed      BLOB NOT NULL,
    nonce       BLOB NOT NULL,
    kek_id      TEXT NOT NULL REFERENCES keks (id),
    created_at  INTEGER NOT NULL,
    last_used   INTEGER
);
CREATE INDEX private_keys_gun_role ON private_keys (gun, role);
