//! Docker image references, normalised the way docker's `distribution/reference` does
//! (`ParseNormalizedNamed` followed by `TagNameOnly`), so that a policy check looks up the
//! same GUN a docker client with content trust would (DESIGN §6 step 1).
//!
//! - A reference without a `/` is an official image on Docker Hub: `nginx` is
//!   `docker.io/library/nginx`, and so is `localhost` or `example.com` on its own (docker
//!   reads those as image names too; `example.com:5000` is image `example.com`, tag `5000`).
//! - Otherwise the first component names a registry when it contains `.` or `:`, is
//!   `localhost`, or has upper-case letters; else the registry is `docker.io`.
//! - `index.docker.io` is rewritten to `docker.io`, and a Docker Hub name of one component
//!   gets `library/`: `docker.io/nginx`, `index.docker.io/nginx` and
//!   `index.docker.io/library/nginx` are all `docker.io/library/nginx`.
//! - `registry-1.docker.io` is *not* rewritten. Docker's library only knows
//!   `index.docker.io` as an alias (normalize.go: `legacyDefaultDomain`), so for docker
//!   `registry-1.docker.io/library/nginx` is a registry of its own and a content-trust
//!   client looks up trust data under that GUN. Attack catalogue KA-06 says all four
//!   spellings become `docker.io/library/nginx`; that is wrong for this one, and we follow
//!   docker: evaluating it as `docker.io/library/nginx` would check trust data the docker
//!   client never consults. It is its own GUN, which `docker.io/...` patterns do not match.
//! - No tag and no digest means tag `latest`; `name:tag@digest` keeps both.
//!
//! Where docker accepts more than a Notary GUN can hold, we refuse with a message rather
//! than evaluate a different repository (catalogue PC-18): registry hosts in upper case
//! (docker keeps `Registry.example.com` as written, a GUN is lower case), IPv6 hosts,
//! host labels over 63 bytes or ports over 65535, a first component that is neither a
//! host nor a path component (docker then keeps no registry at all), a GUN (host and path)
//! over 255 bytes (docker limits the path alone), and digests other than sha256 (Notary
//! targets carry sha256, so no other digest could ever be matched).

use std::fmt;

use crate::tuf::Gun;
use crate::tuf::names::NameError;

/// Docker Hub, as normalised names spell it.
pub const DOCKER_HUB: &str = "docker.io";
/// The legacy name of Docker Hub that docker rewrites to [`DOCKER_HUB`].
pub const LEGACY_DOCKER_HUB: &str = "index.docker.io";
/// The namespace of Docker Hub's official images.
pub const OFFICIAL_NAMESPACE: &str = "library";
/// The tag of a reference that names none.
pub const DEFAULT_TAG: &str = "latest";
/// Longest GUN (host and path): Notary's database column is 255 bytes wide.
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag, as docker's grammar allows.
pub const MAX_TAG_LEN: usize = 128;

/// A longest valid reference: name, `:tag` and `@sha256:<64 hex>`. Longer input is refused
/// before it is looked at.
const MAX_REFERENCE_LEN: usize = MAX_NAME_LEN + 1 + MAX_TAG_LEN + 1 + 7 + 64;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageReference {
    /// The repository as a GUN, host included: `docker.io/library/nginx`.
    pub gun: String,
    /// The tag; `latest` when the reference names neither tag nor digest.
    pub tag: Option<String>,
    /// `sha256:<64 lower-case hex>` when the reference pins a digest.
    pub digest: Option<String>,
}

/// Why a reference was refused. Names are echoed shortened and escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("empty image reference")]
    Empty,
    #[error("image reference is {len} bytes long; no valid reference is longer than {MAX_REFERENCE_LEN}")]
    TooLongReference { len: usize },
    #[error(
        "{0:?} is a 64-digit hex image ID, not a repository name; name an image by digest as REPOSITORY@sha256:<hex>"
    )]
    HexIdentifier(String),
    #[error("repository name {0:?} must be lower case")]
    UpperCase(String),
    #[error("registry host {0:?} must be written in lower case (a GUN is lower case; docker would keep it as written)")]
    HostUpperCase(String),
    #[error("invalid registry host {host:?}: {reason}")]
    InvalidHost { host: String, reason: &'static str },
    #[error(
        "invalid path component {component:?} in repository {name:?}: path components are lower-case letters and \
         digits, joined by single '.', '_' or '__', or by dashes"
    )]
    InvalidComponent { name: String, component: String },
    #[error("repository name {0:?} has an empty path component (a doubled or trailing '/')")]
    EmptyComponent(String),
    #[error(
        "invalid tag {0:?}: a tag is 1 to 128 letters, digits, '_', '.' or '-', and does not start with '.' or '-'"
    )]
    InvalidTag(String),
    #[error(
        "unsupported digest algorithm {0:?}: Notary trust data records sha256 digests; pin the image as \
         @sha256:<64 lower-case hex digits>"
    )]
    UnsupportedDigest(String),
    #[error("invalid digest {0:?}: expected sha256:<64 lower-case hex digits>")]
    InvalidDigest(String),
    #[error("repository name {name:?} is {len} bytes long; the limit is {MAX_NAME_LEN}")]
    TooLong { name: String, len: usize },
    #[error("{0:?} is a repository name only; it takes no tag or digest here")]
    NotAName(String),
    #[error(transparent)]
    Name(#[from] NameError),
}

/// Shortens text echoed in an error, so a huge reference does not make a huge message.
fn shown(text: &str) -> String {
    crate::text::truncate_with_ellipsis(text, 300)
}

impl ImageReference {
    /// Parses and normalises `text` as docker does (see the module documentation).
    pub fn parse(text: &str) -> Result<ImageReference, ReferenceError> {
        let parts = Parts::parse(text)?;
        let (tag, digest) = match (parts.tag, parts.digest) {
            (None, None) => (Some(DEFAULT_TAG.to_string()), None),
            (tag, digest) => (tag.map(str::to_string), digest.map(str::to_string)),
        };
        Ok(ImageReference { gun: parts.gun, tag, digest })
    }

    /// The canonical form: `docker.io/library/nginx:latest`, `GUN@sha256:...` or
    /// `GUN:tag@sha256:...`.
    pub fn normalized(&self) -> String {
        let mut text = self.gun.clone();
        if let Some(tag) = &self.tag {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            text.push('@');
            text.push_str(digest);
        }
        text
    }

    /// The registry host (with its port, if any): `docker.io`.
    pub fn host(&self) -> &str {
        split_gun(&self.gun).0
    }

    /// The repository path on the registry: `library/nginx`.
    pub fn path(&self) -> &str {
        split_gun(&self.gun).1
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized())
    }
}

/// Normalises a repository name (no tag, no digest) to its GUN as docker would:
/// `nginx` → `docker.io/library/nginx`. A canonical GUN comes back unchanged.
pub fn normalize_name(name: &str) -> Result<String, ReferenceError> {
    let parts = Parts::parse(name)?;
    if parts.tag.is_some() || parts.digest.is_some() {
        return Err(ReferenceError::NotAName(shown(name)));
    }
    Ok(parts.gun)
}

/// Splits a normalised GUN into host and path at its first `/`.
pub fn split_gun(gun: &str) -> (&str, &str) {
    gun.split_once('/').unwrap_or((gun, ""))
}

/// A reference taken apart and checked, before the default tag.
struct Parts<'a> {
    gun: String,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

impl<'a> Parts<'a> {
    fn parse(text: &'a str) -> Result<Parts<'a>, ReferenceError> {
        if text.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if text.len() > MAX_REFERENCE_LEN {
            return Err(ReferenceError::TooLongReference { len: text.len() });
        }
        // Docker refuses what could be an image ID rather than a name.
        if text.len() == 64 && text.bytes().all(is_lower_hex) {
            return Err(ReferenceError::HexIdentifier(text.to_string()));
        }
        let (host, remainder) = split_docker_domain(text);
        // Neither a path nor a tag holds '@'; the digest is all that follows it.
        let (name_and_tag, digest) = match remainder.split_once('@') {
            Some((before, after)) => (before, Some(after)),
            None => (remainder, None),
        };
        // The path holds no ':' (a port belongs to the host, split off above).
        let (path, tag) = match name_and_tag.split_once(':') {
            Some((before, after)) => (before, Some(after)),
            None => (name_and_tag, None),
        };
        // Docker checks the case of the repository path before anything else.
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::UpperCase(shown(path)));
        }
        if let Host::Explicit(host) = host {
            check_host(host)?;
        }
        let host = match host {
            Host::Explicit(LEGACY_DOCKER_HUB) | Host::DockerHub => DOCKER_HUB,
            Host::Explicit(host) => host,
        };
        let official = host == DOCKER_HUB && !path.contains('/');
        let gun = if official { format!("{host}/{OFFICIAL_NAMESPACE}/{path}") } else { format!("{host}/{path}") };
        if path.is_empty() || path.split('/').any(str::is_empty) {
            return Err(ReferenceError::EmptyComponent(shown(&gun)));
        }
        if let Some(component) = path.split('/').find(|c| !valid_path_component(c)) {
            return Err(ReferenceError::InvalidComponent { name: shown(&gun), component: shown(component) });
        }
        if gun.len() > MAX_NAME_LEN {
            return Err(ReferenceError::TooLong { name: shown(&gun), len: gun.len() });
        }
        if let Some(tag) = tag {
            check_tag(tag)?;
        }
        if let Some(digest) = digest {
            check_digest(digest)?;
        }
        // The grammar above is the GUN grammar; this only guards against the two drifting.
        Gun::parse(&gun)?;
        Ok(Parts { gun, tag, digest })
    }
}

/// Where the registry of a reference came from.
enum Host<'a> {
    /// None was written: Docker Hub.
    DockerHub,
    /// The first component, read as a registry.
    Explicit(&'a str),
}

/// Docker's `splitDockerDomain`: the registry (if the first component names one) and the
/// rest of the reference, tag and digest included.
fn split_docker_domain(text: &str) -> (Host<'_>, &str) {
    match text.split_once('/') {
        // One component: always an image on Docker Hub, even `localhost` or `host:5000`.
        None => (Host::DockerHub, text),
        Some((first, rest)) if is_registry_component(first) => (Host::Explicit(first), rest),
        Some(_) => (Host::DockerHub, text),
    }
}

/// Docker reads a first component (of several) as a registry when it contains `.` or
/// `:`, is `localhost`, or has upper-case letters (namespaces are lower case).
pub(crate) fn is_registry_component(first: &str) -> bool {
    first == "localhost" || first.contains(['.', ':']) || first.bytes().any(|b| b.is_ascii_uppercase())
}

fn check_host(host: &str) -> Result<(), ReferenceError> {
    let invalid = |reason| Err(ReferenceError::InvalidHost { host: shown(host), reason });
    if host.starts_with('[') {
        return invalid("IPv6 registry addresses are not supported; give the registry a host name");
    }
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReferenceError::HostUpperCase(shown(host)));
    }
    let (name, port) = match host.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if let Some(port) = port
        && !valid_port(port)
    {
        return invalid("the port must be a number from 1 to 65535");
    }
    if name.is_empty() || !name.split('.').all(valid_host_label) {
        return invalid(
            "host names are dot-separated labels of 1 to 63 lower-case letters, digits and '-', \
             not starting or ending with '-'",
        );
    }
    Ok(())
}

pub(crate) fn valid_port(port: &str) -> bool {
    !port.is_empty()
        && port.len() <= 5
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
}

pub(crate) fn valid_host_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Docker's path component (the grammar GUNs use too).
pub(crate) use crate::tuf::names::valid_path_component;

/// Docker's tag: `[\w][\w.-]{0,127}`, with `\w` the ASCII word characters.
fn check_tag(tag: &str) -> Result<(), ReferenceError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_TAG_LEN
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    if valid { Ok(()) } else { Err(ReferenceError::InvalidTag(shown(tag))) }
}

fn check_digest(digest: &str) -> Result<(), ReferenceError> {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(ReferenceError::InvalidDigest(shown(digest)));
    };
    if algorithm != "sha256" {
        // `SHA256:` is no algorithm docker knows either.
        return if algorithm.eq_ignore_ascii_case("sha256") || algorithm.is_empty() {
            Err(ReferenceError::InvalidDigest(shown(digest)))
        } else {
            Err(ReferenceError::UnsupportedDigest(shown(algorithm)))
        };
    }
    if hex.len() != 64 || !hex.bytes().all(is_lower_hex) {
        return Err(ReferenceError::InvalidDigest(shown(digest)));
    }
    Ok(())
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn normalized(text: &str) -> String {
        match ImageReference::parse(text) {
            Ok(reference) => reference.normalized(),
            Err(e) => panic!("{text:?} was refused: {e}"),
        }
    }

    #[test]
    fn normalisation_table() {
        let digest = format!("sha256:{HEX}");
        let cases: Vec<(String, String)> = vec![
            ("nginx".into(), "docker.io/library/nginx:latest".into()),
            ("nginx:1.25".into(), "docker.io/library/nginx:1.25".into()),
            ("library/nginx".into(), "docker.io/library/nginx:latest".into()),
            ("acme/app:v1".into(), "docker.io/acme/app:v1".into()),
            ("acme/team/app".into(), "docker.io/acme/team/app:latest".into()),
            ("docker.io/acme/app".into(), "docker.io/acme/app:latest".into()),
            ("registry.example.com/prod/app:v2".into(), "registry.example.com/prod/app:v2".into()),
            ("registry.example.com:5000/app".into(), "registry.example.com:5000/app:latest".into()),
            ("localhost/app".into(), "localhost/app:latest".into()),
            ("localhost:5000/a/b/c".into(), "localhost:5000/a/b/c:latest".into()),
            ("10.0.0.1:5000/app".into(), "10.0.0.1:5000/app:latest".into()),
            // One component is always a Docker Hub image, as in docker.
            ("localhost".into(), "docker.io/library/localhost:latest".into()),
            ("example.com".into(), "docker.io/library/example.com:latest".into()),
            ("example.com:5000".into(), "docker.io/library/example.com:5000".into()),
            (format!("nginx@{digest}"), format!("docker.io/library/nginx@{digest}")),
            (format!("nginx:v1@{digest}"), format!("docker.io/library/nginx:v1@{digest}")),
            (format!("r.example.com/a:V1_x.y-z@{digest}"), format!("r.example.com/a:V1_x.y-z@{digest}")),
            ("a__b/c-----d/e_f.g".into(), "docker.io/a__b/c-----d/e_f.g:latest".into()),
            ("a:_tag".into(), "docker.io/library/a:_tag".into()),
        ];
        for (input, expected) in cases {
            assert_eq!(normalized(&input), expected, "{input}");
        }
    }

    /// Attack catalogue KA-06, checked against docker's normalize.go: three spellings are
    /// Docker Hub's nginx, `registry-1.docker.io` is a registry of its own for docker.
    #[test]
    fn ka06_docker_hub_spellings() {
        for spelling in [
            "nginx",
            "docker.io/nginx",
            "docker.io/library/nginx",
            "index.docker.io/nginx",
            "index.docker.io/library/nginx",
        ] {
            let reference = ImageReference::parse(spelling).unwrap();
            assert_eq!(reference.gun, "docker.io/library/nginx", "{spelling}");
            assert_eq!(reference.tag.as_deref(), Some("latest"), "{spelling}");
            assert_eq!(reference.digest, None);
            assert_eq!(reference.host(), "docker.io");
            assert_eq!(reference.path(), "library/nginx");
        }
        let other = ImageReference::parse("registry-1.docker.io/library/nginx").unwrap();
        assert_eq!(other.gun, "registry-1.docker.io/library/nginx");
        // A Docker Hub user's repository keeps its namespace; only one-component names
        // get `library/`, and only on Docker Hub.
        assert_eq!(ImageReference::parse("index.docker.io/acme/app").unwrap().gun, "docker.io/acme/app");
        assert_eq!(ImageReference::parse("registry.example.com/nginx").unwrap().gun, "registry.example.com/nginx");
    }

    #[test]
    fn tag_and_digest_are_kept() {
        let digest = format!("sha256:{HEX}");
        let reference = ImageReference::parse(&format!("registry.example.com/app:v1@{digest}")).unwrap();
        assert_eq!(reference.tag.as_deref(), Some("v1"));
        assert_eq!(reference.digest.as_deref(), Some(digest.as_str()));
        let pinned = ImageReference::parse(&format!("registry.example.com/app@{digest}")).unwrap();
        assert_eq!(pinned.tag, None, "a digest reference gets no default tag");
        assert_eq!(pinned.to_string(), format!("registry.example.com/app@{digest}"));
    }

    #[test]
    fn invalid_references_are_refused() {
        let upper_hex = HEX.to_uppercase();
        type Check = fn(&ReferenceError) -> bool;
        let cases: Vec<(String, Check)> = vec![
            ("".into(), |e| matches!(e, ReferenceError::Empty)),
            ("Nginx".into(), |e| matches!(e, ReferenceError::UpperCase(_))),
            ("docker.io/Library/nginx".into(), |e| matches!(e, ReferenceError::UpperCase(_))),
            // Catalogue PC-18: an alias spelling is refused, never another repository.
            ("Docker.io/Acme/App".into(), |e| matches!(e, ReferenceError::UpperCase(_))),
            ("Registry.example.com/app".into(), |e| matches!(e, ReferenceError::HostUpperCase(_))),
            ("Acme/app".into(), |e| matches!(e, ReferenceError::HostUpperCase(_))),
            ("docker.io/acme/app/".into(), |e| matches!(e, ReferenceError::EmptyComponent(_))),
            ("docker.io//app".into(), |e| matches!(e, ReferenceError::EmptyComponent(_))),
            ("registry.example.com/".into(), |e| matches!(e, ReferenceError::EmptyComponent(_))),
            ("acme/app..x".into(), |e| matches!(e, ReferenceError::InvalidComponent { .. })),
            ("acme/-app".into(), |e| matches!(e, ReferenceError::InvalidComponent { .. })),
            ("acme/app_".into(), |e| matches!(e, ReferenceError::InvalidComponent { .. })),
            ("acme/a___b".into(), |e| matches!(e, ReferenceError::InvalidComponent { .. })),
            ("acme/a%2fb".into(), |e| matches!(e, ReferenceError::InvalidComponent { .. })),
            ("acme/../app".into(), |e| matches!(e, ReferenceError::InvalidComponent { .. })),
            ("acme/ap p".into(), |e| matches!(e, ReferenceError::InvalidComponent { .. })),
            ("acme/app\n".into(), |e| matches!(e, ReferenceError::InvalidComponent { .. })),
            ("ex_ample.com/app".into(), |e| matches!(e, ReferenceError::InvalidHost { .. })),
            ("-bad.example.com/app".into(), |e| matches!(e, ReferenceError::InvalidHost { .. })),
            ("example..com/app".into(), |e| matches!(e, ReferenceError::InvalidHost { .. })),
            ("example.com:0/app".into(), |e| matches!(e, ReferenceError::InvalidHost { .. })),
            ("example.com:70000/app".into(), |e| matches!(e, ReferenceError::InvalidHost { .. })),
            ("example.com:/app".into(), |e| matches!(e, ReferenceError::InvalidHost { .. })),
            ("[::1]:5000/app".into(), |e| matches!(e, ReferenceError::InvalidHost { .. })),
            ("nginx:1.0/app".into(), |e| matches!(e, ReferenceError::InvalidHost { .. })),
            ("nginx:".into(), |e| matches!(e, ReferenceError::InvalidTag(_))),
            ("nginx:.v1".into(), |e| matches!(e, ReferenceError::InvalidTag(_))),
            ("nginx:-v1".into(), |e| matches!(e, ReferenceError::InvalidTag(_))),
            ("nginx:v1:v2".into(), |e| matches!(e, ReferenceError::InvalidTag(_))),
            (format!("nginx:{}", "a".repeat(129)), |e| matches!(e, ReferenceError::InvalidTag(_))),
            ("nginx@".into(), |e| matches!(e, ReferenceError::InvalidDigest(_))),
            ("nginx@sha256:abc".into(), |e| matches!(e, ReferenceError::InvalidDigest(_))),
            (format!("nginx@sha256:{upper_hex}"), |e| matches!(e, ReferenceError::InvalidDigest(_))),
            (format!("nginx@SHA256:{HEX}"), |e| matches!(e, ReferenceError::InvalidDigest(_))),
            (format!("nginx@sha256:{HEX}0"), |e| matches!(e, ReferenceError::InvalidDigest(_))),
            (format!("nginx@sha256:{HEX}@sha256:{HEX}"), |e| matches!(e, ReferenceError::InvalidDigest(_))),
            (format!("nginx@sha512:{HEX}{HEX}"), |e| matches!(e, ReferenceError::UnsupportedDigest(_))),
            ("nginx@md5:0123".into(), |e| matches!(e, ReferenceError::UnsupportedDigest(_))),
            (HEX.into(), |e| matches!(e, ReferenceError::HexIdentifier(_))),
            (format!("r.example.com/{}", "a".repeat(250)), |e| matches!(e, ReferenceError::TooLong { .. })),
            ("a".repeat(1000), |e| matches!(e, ReferenceError::TooLongReference { .. })),
        ];
        for (input, expected) in cases {
            match ImageReference::parse(&input) {
                Ok(reference) => panic!("{input:?} was accepted as {}", reference.normalized()),
                Err(error) => {
                    assert!(expected(&error), "{input:?}: unexpected error {error:?}");
                    assert!(!error.to_string().is_empty());
                }
            }
        }
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let message = ImageReference::parse(&format!("nginx@sha512:{HEX}{HEX}")).unwrap_err().to_string();
        assert!(message.contains("sha256"), "{message}");
        let message = ImageReference::parse("Acme/app").unwrap_err().to_string();
        assert!(message.contains("lower case"), "{message}");
        let message = ImageReference::parse(HEX).unwrap_err().to_string();
        assert!(message.contains("@sha256:"), "{message}");
        let long = format!("r.example.com/{}", "a".repeat(2000));
        let message = ImageReference::parse(&long).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn longest_names_fit_a_gun() {
        // 255 bytes in all: accepted; 256: refused.
        let host = "r.example.com/";
        let fits = format!("{host}{}", "a".repeat(MAX_NAME_LEN - host.len()));
        assert_eq!(ImageReference::parse(&fits).unwrap().gun.len(), MAX_NAME_LEN);
        let over = format!("{fits}b");
        assert!(matches!(ImageReference::parse(&over), Err(ReferenceError::TooLong { .. })));
        let tag = "t".repeat(MAX_TAG_LEN);
        let longest = format!("{fits}:{tag}@sha256:{HEX}");
        assert_eq!(longest.len(), MAX_REFERENCE_LEN);
        assert!(ImageReference::parse(&longest).is_ok());
    }

    #[test]
    fn every_normalised_name_is_a_valid_gun() {
        for input in [
            "nginx",
            "a__b/c-----d/e_f.g",
            "localhost:5000/x/y",
            "registry.example.com/prod/app",
            "index.docker.io/nginx",
            "10.0.0.1/app",
            "a-b.c-d.example:443/x.y/z_z",
        ] {
            let reference = ImageReference::parse(input).unwrap();
            let gun = Gun::parse(&reference.gun).unwrap();
            assert_eq!(gun.as_str(), reference.gun);
        }
    }

    #[test]
    fn normalize_name_takes_names_only() {
        assert_eq!(normalize_name("nginx").unwrap(), "docker.io/library/nginx");
        assert_eq!(normalize_name("docker.io/library/nginx").unwrap(), "docker.io/library/nginx");
        assert_eq!(normalize_name("index.docker.io/acme/app").unwrap(), "docker.io/acme/app");
        assert!(matches!(normalize_name("nginx:latest"), Err(ReferenceError::NotAName(_))));
        assert!(matches!(normalize_name(&format!("nginx@sha256:{HEX}")), Err(ReferenceError::NotAName(_))));
        assert!(normalize_name("Nginx").is_err());
    }
}
