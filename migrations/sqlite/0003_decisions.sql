-- The policy decision log (DESIGN §6, §7): every decision, allows included.
-- Times are Unix nanoseconds (UTC).
CREATE TABLE decisions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,
    requester       TEXT NOT NULL,
    image           TEXT NOT NULL,
    operation       TEXT NOT NULL,
    digest          TEXT,
    allowed         INTEGER NOT NULL,
    rule            TEXT,
    -- JSON array of strings.
    reasons         TEXT NOT NULL,
    dry_run         INTEGER NOT NULL,
    -- JSON object: role -> version of the trust data the decision rested on.
    trust_versions  TEXT NOT NULL
);
CREATE INDEX decisions_image ON decisions (image, id);
