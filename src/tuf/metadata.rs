//! The four role files and delegations, as Notary writes them (spec §4.1, §4.4).
//!
//! [`SignedFile::parse`] reads one file: the envelope strictly (its failures are
//! `MALFORMED_JSON` on the wire), then the role body (its failures are `ErrBad<role>`).
//! The exact bytes are kept: they are what is stored, served and hashed.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::canonical::{self, Value};
use super::keys::PublicKey;
use super::names::{BaseRole, RoleName};

/// Highest version we accept: clients and databases with 32-bit version columns must
/// never overflow (attack catalogue RB-07).
pub const MAX_VERSION: i64 = i32::MAX as i64;
/// More signatures on one file than any real threshold needs is an attack on CPU time.
pub const MAX_SIGNATURES: usize = 64;
/// Keys, delegated roles and paths per file (attack catalogue SZ-04).
pub const MAX_KEYS: usize = 1024;
pub const MAX_DELEGATIONS: usize = 1024;
pub const MAX_PATHS: usize = 4096;
pub const MAX_THRESHOLD: i64 = 64;

/// A signature entry as read from a file (`method` lower-cased, as Notary does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSignature {
    pub key_id: String,
    pub method: String,
    pub sig: Vec<u8>,
}

/// `keyids` and `threshold` of a role in root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleKeys {
    pub key_ids: Vec<String>,
    pub threshold: usize,
}

#[derive(Debug, Clone)]
pub struct Root {
    pub consistent_snapshot: bool,
    pub keys: BTreeMap<String, PublicKey>,
    pub roles: BTreeMap<String, RoleKeys>,
}

impl Root {
    /// The key set of a base role; every base role is present once parsed.
    pub fn role(&self, role: BaseRole) -> &RoleKeys {
        &self.roles[role.as_str()]
    }

    /// The keys of a base role, in listed order.
    pub fn role_keys(&self, role: BaseRole) -> impl Iterator<Item = &PublicKey> {
        self.role(role).key_ids.iter().filter_map(|id| self.keys.get(id))
    }
}

/// Hashes and length of a file, as snapshot, timestamp and targets list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub length: i64,
    /// Algorithm name → raw digest.
    pub hashes: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct Delegation {
    pub name: RoleName,
    pub key_ids: Vec<String>,
    pub threshold: usize,
    /// Path prefixes as the client sent them; `""` matches everything.
    pub paths: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub targets: BTreeMap<String, FileMeta>,
    pub delegation_keys: BTreeMap<String, PublicKey>,
    pub delegations: Vec<Delegation>,
}

impl Targets {
    pub fn delegation(&self, name: &RoleName) -> Option<&Delegation> {
        self.delegations.iter().find(|d| &d.name == name)
    }
}

/// Snapshot and timestamp bodies: role name → file meta.
#[derive(Debug, Clone, Default)]
pub struct MetaList {
    pub meta: BTreeMap<String, FileMeta>,
}

#[derive(Debug, Clone)]
pub enum Body {
    Root(Root),
    Targets(Targets),
    Snapshot(MetaList),
    Timestamp(MetaList),
}

/// One metadata file: its exact bytes and what they say.
#[derive(Debug, Clone)]
pub struct SignedFile {
    pub role: RoleName,
    pub bytes: Bytes,
    /// Canonical bytes of the `signed` value: what signatures cover.
    pub signed_canonical: Vec<u8>,
    pub signatures: Vec<FileSignature>,
    pub version: i64,
    pub expires: OffsetDateTime,
    pub body: Body,
}

/// Why a file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not a well-formed metadata envelope (`MALFORMED_JSON`).
    #[error("{0}")]
    Malformed(String),
    /// A well-formed envelope whose role body is invalid (`ErrBad<role>`).
    #[error("{0}")]
    Invalid(String),
}

fn malformed(message: impl Into<String>) -> ParseError {
    ParseError::Malformed(message.into())
}

fn invalid(message: impl Into<String>) -> ParseError {
    ParseError::Invalid(message.into())
}

impl SignedFile {
    /// Parses `bytes` as the file of `role`.
    pub fn parse(role: RoleName, bytes: Bytes) -> Result<SignedFile, ParseError> {
        let document = canonical::parse(&bytes).map_err(|e| malformed(e.to_string()))?;
        let envelope = document.as_object().ok_or_else(|| malformed("metadata is not a JSON object"))?;
        if let Some(extra) = envelope.keys().find(|k| *k != "signed" && *k != "signatures") {
            // Cure53 TUF-01-001: unsigned data beside `signed` must not be stored.
            return Err(malformed(format!("unexpected field {extra:?} beside \"signed\"")));
        }
        let signed = envelope.get("signed").ok_or_else(|| malformed("no \"signed\" field"))?;
        let signed_members = signed.as_object().ok_or_else(|| malformed("\"signed\" is not an object"))?;
        let signatures = parse_signatures(envelope.get("signatures"))?;

        let type_name = signed_members
            .get("_type")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("\"_type\" is missing or not a string"))?;
        let expires = signed_members
            .get("expires")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("\"expires\" is missing or not a string"))
            .and_then(|text| {
                parse_time(text).ok_or_else(|| malformed(format!("\"expires\" {text:?} is not an RFC 3339 time")))
            })?;
        let version = signed_members
            .get("version")
            .and_then(Value::as_integer)
            .ok_or_else(|| malformed("\"version\" is missing or not an integer"))?;

        if type_name != role.type_name() {
            return Err(invalid(format!("{role} metadata must have _type {:?}, not {type_name:?}", role.type_name())));
        }
        if version < 1 {
            return Err(invalid("version cannot be less than one"));
        }
        if version > MAX_VERSION {
            return Err(invalid(format!("version {version} is out of range (at most {MAX_VERSION})")));
        }
        if signatures.len() > MAX_SIGNATURES {
            return Err(invalid(format!("more than {MAX_SIGNATURES} signatures")));
        }

        let body = match role.base() {
            Some(BaseRole::Root) => Body::Root(parse_root(&bytes)?),
            Some(BaseRole::Snapshot) => Body::Snapshot(parse_meta_list(&bytes)?),
            Some(BaseRole::Timestamp) => Body::Timestamp(parse_meta_list(&bytes)?),
            Some(BaseRole::Targets) | None => Body::Targets(parse_targets(&role, &bytes)?),
        };
        Ok(SignedFile {
            role,
            signed_canonical: canonical::to_canonical(signed),
            bytes,
            signatures,
            version,
            expires,
            body,
        })
    }

    pub fn root(&self) -> Option<&Root> {
        match &self.body {
            Body::Root(root) => Some(root),
            _ => None,
        }
    }

    pub fn targets(&self) -> Option<&Targets> {
        match &self.body {
            Body::Targets(targets) => Some(targets),
            _ => None,
        }
    }

    /// The `meta` list of a snapshot or timestamp.
    pub fn meta(&self) -> Option<&MetaList> {
        match &self.body {
            Body::Snapshot(list) | Body::Timestamp(list) => Some(list),
            _ => None,
        }
    }

    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        // The TUF spec requires `expires` to be strictly later than now.
        self.expires <= now
    }
}

/// Parses an RFC 3339 time as Go's `time.Time` JSON decoding does.
pub fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// Formats a time as Go's `time.RFC3339Nano` in UTC (trailing zeros of the fraction
/// trimmed), which is how notary writes `expires`.
pub fn format_time(time: OffsetDateTime) -> String {
    let t = time.to_offset(time::UtcOffset::UTC);
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond();
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

fn parse_signatures(value: Option<&Value>) -> Result<Vec<FileSignature>, ParseError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(malformed("\"signatures\" is not a list")),
    };
    items
        .iter()
        .map(|item| {
            let members = item.as_object().ok_or_else(|| malformed("a signature is not an object"))?;
            if let Some(extra) = members.keys().find(|k| !matches!(k.as_str(), "keyid" | "method" | "sig")) {
                return Err(malformed(format!("unexpected field {extra:?} in a signature")));
            }
            let field = |name: &str| {
                members
                    .get(name)
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed(format!("signature field {name:?} is missing or not a string")))
            };
            let sig = BASE64.decode(field("sig")?).map_err(|_| malformed("a signature is not valid base64"))?;
            Ok(FileSignature { key_id: field("keyid")?.to_owned(), method: field("method")?.to_ascii_lowercase(), sig })
        })
        .collect()
}

/// `{"signed": T}`: serde reads the typed body of a document already checked strictly.
#[derive(Deserialize)]
struct Document<T> {
    signed: T,
}

fn typed<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ParseError> {
    serde_json::from_slice::<Document<T>>(bytes).map(|d| d.signed).map_err(|e| invalid(e.to_string()))
}

#[derive(Deserialize)]
struct RawKey {
    keytype: String,
    keyval: RawKeyVal,
}

#[derive(Deserialize)]
struct RawKeyVal {
    public: String,
    #[serde(default)]
    private: Option<IgnoredAny>,
}

fn parse_keys(raw: BTreeMap<String, RawKey>) -> Result<BTreeMap<String, PublicKey>, ParseError> {
    if raw.len() > MAX_KEYS {
        return Err(invalid(format!("more than {MAX_KEYS} keys")));
    }
    raw.into_iter()
        .map(|(id, key)| {
            let parsed = PublicKey::from_parts(&key.keytype, &key.keyval.public, key.keyval.private.is_some())
                .map_err(|e| invalid(format!("key {id}: {e}")))?;
            if parsed.id != id {
                return Err(invalid(format!("key ID {id} does not match its key (expected {})", parsed.id)));
            }
            Ok((id, parsed))
        })
        .collect()
}

fn check_threshold(owner: &str, key_ids: &[String], threshold: i64) -> Result<usize, ParseError> {
    if threshold < 1 {
        return Err(invalid(format!("invalid threshold {threshold} for {owner}: must be at least 1")));
    }
    if threshold > MAX_THRESHOLD {
        return Err(invalid(format!("invalid threshold {threshold} for {owner}")));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = key_ids.iter().find(|id| !seen.insert(id.as_str())) {
        return Err(invalid(format!("key ID {dup} is listed twice for {owner}")));
    }
    Ok(threshold as usize)
}

#[derive(Deserialize)]
struct RawRoot {
    #[serde(default)]
    consistent_snapshot: bool,
    keys: BTreeMap<String, RawKey>,
    roles: BTreeMap<String, RawRoleKeys>,
}

#[derive(Deserialize)]
struct RawRoleKeys {
    keyids: Vec<String>,
    threshold: i64,
}

fn parse_root(bytes: &[u8]) -> Result<Root, ParseError> {
    let raw: RawRoot = typed(bytes)?;
    let keys = parse_keys(raw.keys)?;
    let mut roles = BTreeMap::new();
    for (name, role) in raw.roles {
        if !BaseRole::ALL.iter().any(|r| r.as_str() == name) {
            return Err(invalid(format!("root lists an unexpected role {name:?}")));
        }
        let threshold = check_threshold(&name, &role.keyids, role.threshold)?;
        if let Some(missing) = role.keyids.iter().find(|id| !keys.contains_key(*id)) {
            return Err(invalid(format!("role {name} lists key {missing}, which root does not define")));
        }
        // A root role that can never meet its threshold locks the repository for good
        // (catalogue TH-04).
        let count = distinct_keys(&name, role.keyids.iter().filter_map(|id| keys.get(id)))?;
        if count < threshold {
            return Err(invalid(format!("{name} has threshold {threshold} but only {count} keys")));
        }
        roles.insert(name, RoleKeys { key_ids: role.keyids, threshold });
    }
    if let Some(missing) = BaseRole::ALL.iter().find(|r| !roles.contains_key(r.as_str())) {
        return Err(invalid(format!("root does not define the {} role", missing.as_str())));
    }
    Ok(Root { consistent_snapshot: raw.consistent_snapshot, keys, roles })
}

/// A role's key IDs must name distinct keys: the same key under two IDs would count
/// twice (attack catalogue TH-02). Returns how many keys there are.
fn distinct_keys<'a>(owner: &str, keys: impl Iterator<Item = &'a PublicKey>) -> Result<usize, ParseError> {
    let mut seen = std::collections::HashSet::new();
    for key in keys {
        if !seen.insert(&key.material) {
            return Err(invalid(format!("{owner} lists the same public key under two key IDs")));
        }
    }
    Ok(seen.len())
}

#[derive(Deserialize)]
struct RawTargets {
    #[serde(default)]
    targets: Option<BTreeMap<String, RawFileMeta>>,
    #[serde(default)]
    delegations: Option<RawDelegations>,
}

#[derive(Deserialize)]
struct RawFileMeta {
    length: i64,
    hashes: BTreeMap<String, String>,
    // `custom` (any JSON) is left in the stored bytes and not interpreted.
}

// Go decodes `null` into an empty slice or map, and the notary client does send
// `"keyids":null` for a delegation whose keys were all purged.
#[derive(Deserialize)]
struct RawDelegations {
    #[serde(default)]
    keys: Option<BTreeMap<String, RawKey>>,
    #[serde(default)]
    roles: Option<Vec<RawDelegation>>,
}

#[derive(Deserialize)]
struct RawDelegation {
    name: String,
    #[serde(default)]
    keyids: Option<Vec<String>>,
    threshold: i64,
    #[serde(default)]
    paths: Option<Vec<String>>,
    #[serde(default)]
    path_hash_prefixes: Option<Vec<String>>,
}

fn parse_file_meta(name: &str, raw: RawFileMeta) -> Result<FileMeta, ParseError> {
    if raw.length < 0 {
        return Err(invalid(format!("{name}: negative length")));
    }
    let mut hashes = BTreeMap::new();
    for (algorithm, digest) in raw.hashes {
        let bytes =
            BASE64.decode(&digest).map_err(|_| invalid(format!("{name}: {algorithm} hash is not valid base64")))?;
        let expected_len = match algorithm.as_str() {
            "sha256" => Some(32),
            "sha512" => Some(64),
            _ => None,
        };
        if expected_len.is_some_and(|len| len != bytes.len()) {
            return Err(invalid(format!("{name}: {algorithm} hash has {} bytes", bytes.len())));
        }
        hashes.insert(algorithm, bytes);
    }
    Ok(FileMeta { length: raw.length, hashes })
}

fn parse_targets(role: &RoleName, bytes: &[u8]) -> Result<Targets, ParseError> {
    let raw: RawTargets = typed(bytes)?;
    let targets = raw
        .targets
        .unwrap_or_default()
        .into_iter()
        .map(|(name, meta)| Ok((name.clone(), parse_file_meta(&name, meta)?)))
        .collect::<Result<BTreeMap<_, _>, ParseError>>()?;
    let raw_delegations = raw.delegations.unwrap_or(RawDelegations { keys: None, roles: None });
    let raw_roles = raw_delegations.roles.unwrap_or_default();
    if raw_roles.len() > MAX_DELEGATIONS {
        return Err(invalid(format!("more than {MAX_DELEGATIONS} delegations")));
    }
    let delegation_keys = parse_keys(raw_delegations.keys.unwrap_or_default())?;
    let mut delegations: Vec<Delegation> = Vec::with_capacity(raw_roles.len());
    for raw in raw_roles {
        let key_ids = raw.keyids.unwrap_or_default();
        let name = RoleName::parse(&raw.name)
            .filter(RoleName::is_delegation)
            .ok_or_else(|| invalid(format!("delegation role name {:?} is invalid", raw.name)))?;
        if name.parent().as_ref() != Some(role) {
            return Err(invalid(format!("{role} cannot delegate {name}: only its direct children")));
        }
        if delegations.iter().any(|d| d.name == name) {
            return Err(invalid(format!("{role} delegates {name} twice")));
        }
        if raw.path_hash_prefixes.as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(invalid(format!("{name}: path_hash_prefixes are not supported")));
        }
        let paths = raw.paths.unwrap_or_default();
        if paths.len() > MAX_PATHS {
            return Err(invalid(format!("{name}: more than {MAX_PATHS} paths")));
        }
        let threshold = check_threshold(name.as_str(), &key_ids, raw.threshold)?;
        if let Some(missing) = key_ids.iter().find(|id| !delegation_keys.contains_key(*id)) {
            return Err(invalid(format!("{name} lists key {missing}, which the delegations do not define")));
        }
        // Fewer keys than the threshold is allowed here, unlike in root: `notary
        // delegation purge` leaves such roles behind, and they simply cannot sign.
        distinct_keys(name.as_str(), key_ids.iter().filter_map(|id| delegation_keys.get(id)))?;
        delegations.push(Delegation { name, key_ids, threshold, paths });
    }
    Ok(Targets { targets, delegation_keys, delegations })
}

#[derive(Deserialize)]
struct RawMetaList {
    meta: BTreeMap<String, RawFileMeta>,
}

fn parse_meta_list(bytes: &[u8]) -> Result<MetaList, ParseError> {
    let raw: RawMetaList = typed(bytes)?;
    let meta = raw
        .meta
        .into_iter()
        .map(|(name, meta)| Ok((name.clone(), parse_file_meta(&name, meta)?)))
        .collect::<Result<BTreeMap<_, _>, ParseError>>()?;
    Ok(MetaList { meta })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_time_like_go_rfc3339nano() {
        let t = parse_time("2036-11-19T06:42:44.502491543Z").unwrap();
        assert_eq!(format_time(t), "2036-11-19T06:42:44.502491543Z");
        let t = parse_time("2116-07-03T17:56:36.027379870-05:00").unwrap();
        assert_eq!(format_time(t), "2116-07-03T22:56:36.02737987Z");
        let t = parse_time("2030-01-01T00:00:00Z").unwrap();
        assert_eq!(format_time(t), "2030-01-01T00:00:00Z");
    }

    #[test]
    fn refuses_bad_times() {
        for bad in ["2030-01-01T10:00:00", "2030-13-01T00:00:00Z", "2030-01-01T24:00:00Z", "2030-01-01T00:00:00Zjunk"] {
            assert!(parse_time(bad).is_none(), "{bad}");
        }
    }
}
