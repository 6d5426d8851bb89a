//! Notary's `/v2` URL layout (spec §1), parsed by hand: a GUN may contain slashes and a
//! role may too, which a router's path patterns cannot express.
//!
//! The path is percent-decoded once, except for encoded slashes, which stay encoded and
//! so make the GUN invalid: one repository never answers to two spellings (catalogue GN-02).

use crate::tuf::{BaseRole, RoleName};

/// What a request path names.
#[derive(Debug, PartialEq, Eq)]
pub enum TrustPath {
    /// `/v2/`
    Ping,
    /// `/v2/_trust/changefeed`
    GlobalChangefeed,
    /// `/v2/{gun}/_trust/changefeed`
    Changefeed { gun: String },
    /// `/v2/{gun}/_trust/tuf/`
    Repository { gun: String },
    /// `/v2/{gun}/_trust/tuf/{file}`
    File { gun: String, file: TufFile },
    /// Anything else: Notary's catch-all.
    Other,
}

/// The file part of a `_trust/tuf/` URL.
#[derive(Debug, PartialEq, Eq)]
pub enum TufFile {
    Key(BaseRole),
    Current(RoleName),
    ByVersion(RoleName, i64),
    /// Lowercase or not, as given: only a stored lowercase SHA-256 can match.
    ByChecksum(RoleName, String),
    /// A file name that names no metadata.
    Unknown,
}

pub fn parse(raw_path: &str) -> TrustPath {
    let Some(path) = percent_decode(raw_path) else { return TrustPath::Other };
    if path == "/v2/" {
        return TrustPath::Ping;
    }
    let Some(rest) = path.strip_prefix("/v2/") else { return TrustPath::Other };
    if rest == "_trust/changefeed" {
        return TrustPath::GlobalChangefeed;
    }
    let Some((gun, tail)) = rest.split_once("/_trust/") else { return TrustPath::Other };
    let gun = gun.to_string();
    match tail {
        "changefeed" => TrustPath::Changefeed { gun },
        "tuf/" => TrustPath::Repository { gun },
        _ => match tail.strip_prefix("tuf/") {
            Some(file) => TrustPath::File { gun, file: parse_file(file) },
            None => TrustPath::Other,
        },
    }
}

fn parse_file(file: &str) -> TufFile {
    if let Some(name) = file.strip_suffix(".key") {
        return match name {
            "timestamp" => TufFile::Key(BaseRole::Timestamp),
            "snapshot" => TufFile::Key(BaseRole::Snapshot),
            _ => TufFile::Unknown,
        };
    }
    let Some(stem) = file.strip_suffix(".json") else { return TufFile::Unknown };
    let role = |name: &str| RoleName::parse(name);
    if let Some((name, checksum)) = stem.rsplit_once('.')
        && matches!(checksum.len(), 64 | 96 | 128)
        && checksum.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return role(name).map_or(TufFile::Unknown, |r| TufFile::ByChecksum(r, checksum.to_string()));
    }
    if let Some((version, name)) = stem.split_once('.')
        && !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit())
    {
        return match (version.parse::<i64>(), role(name)) {
            (Ok(version), Some(role)) => TufFile::ByVersion(role, version),
            _ => TufFile::Unknown,
        };
    }
    role(stem).map_or(TufFile::Unknown, TufFile::Current)
}

/// Decodes `%XX` escapes once. `%2F` is kept as it is; malformed escapes and escapes that
/// do not decode to UTF-8 fail.
fn percent_decode(path: &str) -> Option<String> {
    if !path.contains('%') {
        return Some(path.to_string());
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
            if value == b'/' {
                out.extend_from_slice(&bytes[i..i + 3]);
            } else {
                out.push(value);
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> RoleName {
        RoleName::parse(name).unwrap()
    }

    fn file(path: &str) -> TufFile {
        match parse(path) {
            TrustPath::File { file, .. } => file,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn routes_like_notary() {
        let sha = "a".repeat(64);
        assert_eq!(parse("/v2/"), TrustPath::Ping);
        assert_eq!(parse("/v2"), TrustPath::Other);
        assert_eq!(parse("/v2/_trust/changefeed"), TrustPath::GlobalChangefeed);
        assert_eq!(parse("/v2/docker.io/a/b/_trust/changefeed"), TrustPath::Changefeed { gun: "docker.io/a/b".into() });
        assert_eq!(parse("/v2/a/b/_trust/tuf/"), TrustPath::Repository { gun: "a/b".into() });
        assert_eq!(file("/v2/a/_trust/tuf/root.json"), TufFile::Current(role("root")));
        assert_eq!(file("/v2/a/_trust/tuf/3.root.json"), TufFile::ByVersion(role("root"), 3));
        assert_eq!(file("/v2/a/_trust/tuf/01.root.json"), TufFile::ByVersion(role("root"), 1));
        assert_eq!(
            file(&format!("/v2/a/_trust/tuf/targets/releases.{sha}.json")),
            TufFile::ByChecksum(role("targets/releases"), sha.clone())
        );
        assert_eq!(file("/v2/a/_trust/tuf/targets/releases.json"), TufFile::Current(role("targets/releases")));
        assert_eq!(file("/v2/a/_trust/tuf/timestamp.key"), TufFile::Key(BaseRole::Timestamp));
        assert_eq!(file("/v2/a/_trust/tuf/root.key"), TufFile::Unknown);
        assert_eq!(file("/v2/a/_trust/tuf/targets/../root.json"), TufFile::Unknown);
        assert_eq!(file("/v2/a/_trust/tuf/targets/releases/..json"), TufFile::Unknown);
        assert_eq!(file("/v2/a/_trust/tuf/99999999999999999999.root.json"), TufFile::Unknown);
        assert_eq!(file("/v2/a/_trust/tuf/root.json.json"), TufFile::Unknown);
    }

    #[test]
    fn decodes_once_and_keeps_encoded_slashes() {
        assert_eq!(parse("/v2/a%2fb/_trust/tuf/"), TrustPath::Repository { gun: "a%2fb".into() });
        assert_eq!(parse("/v2/%2e%2e/_trust/tuf/"), TrustPath::Repository { gun: "..".into() });
        assert_eq!(parse("/v2/%252e/_trust/tuf/"), TrustPath::Repository { gun: "%2e".into() });
        assert_eq!(file("/v2/a/_trust/tuf/targets%2F..%2Froot.json"), TufFile::Unknown);
        assert_eq!(parse("/v2/a%zz/_trust/tuf/"), TrustPath::Other);
    }
}
