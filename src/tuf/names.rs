//! Validated names: GUNs (repository names) and role names.
//!
//! Notary accepts any GUN without `*`; we accept only names in docker's reference grammar,
//! lower case, so that one repository never answers to two spellings and no GUN can carry
//! dot segments, encoded slashes or control characters (attack catalogue §5.13, §5.14).

use std::fmt;
use std::sync::Arc;

/// Notary's database column is 255 bytes wide.
pub const MAX_GUN_LEN: usize = 255;
/// Notary refuses delegation names of 256 bytes or more.
pub const MAX_ROLE_LEN: usize = 255;

/// A Globally Unique Name of a trusted collection, e.g. `docker.io/library/alpine`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gun(Arc<str>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid repository name {name:?}: {reason}")]
pub struct NameError {
    pub name: String,
    pub reason: &'static str,
}

fn name_error(name: &str, reason: &'static str) -> NameError {
    NameError { name: name.chars().take(300).collect(), reason }
}

impl Gun {
    pub fn parse(name: &str) -> Result<Gun, NameError> {
        if name.is_empty() || name.len() > MAX_GUN_LEN {
            return Err(name_error(name, "must be 1 to 255 bytes long"));
        }
        let mut segments = name.split('/');
        let first = segments.next().unwrap_or_default();
        if is_host(first) {
            if !valid_host(first) {
                return Err(name_error(name, "invalid registry host"));
            }
            if name == first {
                return Err(name_error(name, "a registry host alone is not a repository"));
            }
        } else if !valid_path_component(first) {
            return Err(name_error(
                name,
                "path components are lower-case letters and digits joined by '.', '_', '__' or '-'",
            ));
        }
        for segment in segments {
            if !valid_path_component(segment) {
                return Err(name_error(
                    name,
                    "path components are lower-case letters and digits joined by '.', '_', '__' or '-'",
                ));
            }
        }
        Ok(Gun(name.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the GUN starts with `prefix`, which ends in `/` (so the match is on a
    /// segment boundary), as `--gun-prefix` requires.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.0.starts_with(prefix)
    }
}

impl fmt::Display for Gun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Docker's rule: a first segment with a `.` or `:`, or `localhost`, names a registry.
fn is_host(segment: &str) -> bool {
    segment.contains('.') || segment.contains(':') || segment == "localhost"
}

fn valid_host(segment: &str) -> bool {
    let (host, port) = match segment.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (segment, None),
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
    });
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && label.len() <= 63
            && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-'
    };
    port_ok && !host.is_empty() && host.split('.').all(label_ok)
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*` from docker/distribution's reference grammar.
pub fn valid_path_component(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &segment[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A role: `root`, `targets`, `snapshot`, `timestamp`, or a delegation `targets/...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleName(Arc<str>);

/// The four roles every repository has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BaseRole {
    Root,
    Targets,
    Snapshot,
    Timestamp,
}

impl BaseRole {
    pub const ALL: [BaseRole; 4] = [BaseRole::Root, BaseRole::Targets, BaseRole::Snapshot, BaseRole::Timestamp];

    pub fn as_str(self) -> &'static str {
        match self {
            BaseRole::Root => "root",
            BaseRole::Targets => "targets",
            BaseRole::Snapshot => "snapshot",
            BaseRole::Timestamp => "timestamp",
        }
    }

    /// The `_type` value Notary writes for this role (delegations are `Targets`).
    pub fn type_name(self) -> &'static str {
        match self {
            BaseRole::Root => "Root",
            BaseRole::Targets => "Targets",
            BaseRole::Snapshot => "Snapshot",
            BaseRole::Timestamp => "Timestamp",
        }
    }

    pub fn name(self) -> RoleName {
        RoleName(self.as_str().into())
    }
}

impl RoleName {
    /// Notary's `ValidRole` (`tuf/data/roles.go`): a base role, or a delegation name of
    /// lower-case letters, digits, `-`, `_` and `/` that is already a clean path.
    pub fn parse(name: &str) -> Option<RoleName> {
        if BaseRole::ALL.iter().any(|r| r.as_str() == name) {
            return Some(RoleName(name.into()));
        }
        let rest = name.strip_prefix("targets/")?;
        let charset_ok =
            name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'/'));
        let clean = rest.split('/').all(|segment| !segment.is_empty() && segment != "." && segment != "..");
        (charset_ok && clean && name.len() <= MAX_ROLE_LEN).then(|| RoleName(name.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn base(&self) -> Option<BaseRole> {
        BaseRole::ALL.into_iter().find(|r| r.as_str() == &*self.0)
    }

    pub fn is_delegation(&self) -> bool {
        self.0.starts_with("targets/")
    }

    /// `targets` or a delegation: roles whose files are Targets metadata.
    pub fn is_targets_like(&self) -> bool {
        &*self.0 == "targets" || self.is_delegation()
    }

    /// The delegating role: `targets/a/b` → `targets/a`, `targets/a` → `targets`.
    pub fn parent(&self) -> Option<RoleName> {
        if !self.is_delegation() {
            return None;
        }
        self.0.rsplit_once('/').map(|(parent, _)| RoleName(parent.into()))
    }

    /// Number of path segments (`targets` is 1), the order Notary loads roles in.
    pub fn depth(&self) -> usize {
        self.0.split('/').count()
    }

    /// The `_type` a file of this role must declare.
    pub fn type_name(&self) -> &'static str {
        self.base().map_or("Targets", BaseRole::type_name)
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_guns() {
        for name in [
            "docker.io/library/alpine",
            "registry.example.com/team/app",
            "127.0.0.1:5000/myimg",
            "localhost:4443/a/b",
            "localhost/app",
            "conformance/basic-123456789",
            "docker.com/notary0.1/samplerepo",
            "alice/app",
            "a__b/c.d/e---f",
            "app",
        ] {
            assert!(Gun::parse(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn refuses_aliases_and_traversal() {
        for name in [
            "",
            "docker.io//acme/app",
            "docker.io/acme/app/",
            "/docker.io/acme/app",
            "Docker.io/Acme/App",
            "docker.io/acme/app.",
            "docker.io/acme/../../etc",
            "docker.io/acme/./app",
            "docker.io/acme/app:latest",
            "docker.io/acme/app@sha256:abc",
            "docker.io/a_trust/x/_trust/tuf",
            "docker.io/acme%2f..",
            "docker.io/acme/a\u{0}b",
            "docker.io/acme/a b",
            "docker.io/\u{430}cme/app",
            "docker.io/acme\\app",
            "docker.io:99999/app",
            "docker.io",
            "-bad.io/app",
        ] {
            assert!(Gun::parse(name).is_err(), "{name:?}");
        }
        assert!(Gun::parse(&"a".repeat(256)).is_err());
        assert!(Gun::parse(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn role_names_follow_notary() {
        for ok in ["root", "targets", "snapshot", "timestamp", "targets/releases", "targets/a/b-c_d/0"] {
            assert!(RoleName::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "foo",
            "targets/",
            "targets//x",
            "targets/../root",
            "targets/./x",
            "/targets/x",
            "targets/x/",
            "targets/Releases",
            "targets/rel ease",
            "targets/r\u{e9}l",
            "targets/a;b",
            "targets/a\\b",
            "targets/*",
            "targets/a/*",
            "snapshot.key",
            "root.json",
            "timestamp/x",
            "root/x",
            "mirrors",
            "targets.",
            "foo/targets",
            "",
        ] {
            assert!(RoleName::parse(bad).is_none(), "{bad:?}");
        }
        assert!(RoleName::parse(&format!("targets/{}", "a".repeat(248))).is_none());
        assert_eq!(RoleName::parse("targets/a/b").unwrap().parent(), RoleName::parse("targets/a"));
        assert_eq!(RoleName::parse("targets/a").unwrap().parent(), RoleName::parse("targets"));
        assert_eq!(RoleName::parse("targets").unwrap().parent(), None);
    }
}
