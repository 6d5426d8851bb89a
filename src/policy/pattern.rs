//! GUN patterns of policy rules (DESIGN §6): the host is matched on its own, `*` stays
//! within one path segment and `**` spans any number of segments.
//!
//! Portieris once globbed over the whole reference, so `*.trusted.example.com/org/*`
//! admitted `attacker.example.com/x.trusted.example.com/org/evil` (research notes §1.1,
//! lesson 5). Here a pattern and a GUN are both split into host and path first, with
//! docker's registry rule, and each part is matched anchored at both ends:
//!
//! - The host: a `*` matches within one DNS label, never across `.` or `:`. So
//!   `*.example.com` matches `a.example.com` but neither `a.b.example.com` nor
//!   `example.com` (list `*.*.example.com` too if deeper names are meant), and
//!   `registry.example.com:*` matches the registry on any port while
//!   `registry.example.com` matches it only without one. `**` is not allowed in a host.
//! - The path, segment by segment: `**` as a whole segment matches zero or more segments,
//!   `*` matches any characters within one segment, everything else is literal.
//!
//! A pattern without a registry is read as docker reads an image name: `prod/**` is
//! `docker.io/prod/**` and `nginx` is `docker.io/library/nginx`; `index.docker.io` is
//! `docker.io`. Two exceptions, because nobody means docker's reading of them: a Docker Hub
//! pattern whose path is just `**` (`docker.io/**`) covers every Docker Hub repository, not
//! `docker.io/library/**`; and the pattern `**` on its own matches every repository on
//! every registry. A pattern of one component that looks like a registry (`example.com`,
//! `localhost:5000`) is refused: docker would read it as an image on Docker Hub.

use std::fmt;

use super::reference::{
    DOCKER_HUB, LEGACY_DOCKER_HUB, OFFICIAL_NAMESPACE, is_registry_component, normalize_name, split_gun,
    valid_host_label, valid_path_component, valid_port,
};

/// Longest pattern accepted; GUNs are at most 255 bytes.
const MAX_PATTERN_LEN: usize = 1024;

/// Why a pattern was refused; the text says what is wrong and how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("empty pattern")]
    Empty,
    #[error("pattern is {len} bytes long; GUNs are at most 255")]
    TooLong { len: usize },
    #[error("pattern {0:?} has surrounding spaces")]
    SurroundingSpaces(String),
    #[error("pattern {0:?} names a digest; patterns name repositories: drop the '@...'")]
    Digest(String),
    #[error("pattern {0:?} must be lower case, as repository names are")]
    UpperCase(String),
    #[error("pattern {0:?}: patterns name repositories, not tags: drop the ':...'")]
    Tag(String),
    #[error(
        "pattern {0:?} names a registry, not a repository (docker would read it as an image on Docker Hub): write \
         \"{0}/**\" for every repository on it"
    )]
    RegistryOnly(String),
    #[error("pattern {pattern:?}: registry host {host:?}: {problem}")]
    Host { pattern: String, host: String, problem: HostProblem },
    #[error("pattern {pattern:?}: {problem}")]
    Segment { pattern: String, problem: SegmentProblem },
}

/// What is wrong with the host of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostProblem {
    #[error("'**' is for paths; in a host '*' matches within one label, so list each depth")]
    DoubleStar,
    #[error("IPv6 registry addresses are not supported")]
    Ipv6,
    #[error("the port must be a number from 1 to 65535, or '*'")]
    Port,
    #[error(
        "label {0:?}: host labels are 1 to 63 lower-case letters, digits and '-' (not at either end), or '*' \
         within one label"
    )]
    Label(String),
}

/// What is wrong with a path segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentProblem {
    #[error("empty path segment (a doubled or trailing '/')")]
    Empty,
    #[error("segment {0:?}: '**' must be a whole segment; '*' matches within one")]
    PartialDoubleStar(String),
    #[error("segment {0:?}: patterns name repositories, not tags: drop the ':...'")]
    Tag(String),
    #[error(
        "segment {0:?}: path segments are lower-case letters and digits joined by '.', '_', '__' or dashes, with \
         '*' for any characters within the segment"
    )]
    Invalid(String),
}

/// A parsed GUN pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryPattern {
    text: String,
    host: HostPattern,
    path: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// Only from the pattern `**`.
    Any,
    /// Labels and their separators (`.` or `:`), in order: `["*", ".", "example", ".", "com"]`.
    Labels(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `**`: zero or more segments.
    AnyDepth,
    /// One segment; `*` matches any characters within it.
    Glob(String),
}

impl RepositoryPattern {
    /// Parses a pattern; the error says what is wrong with it and how to write it.
    pub fn parse(text: &str) -> Result<RepositoryPattern, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.len() > MAX_PATTERN_LEN {
            return Err(PatternError::TooLong { len: text.len() });
        }
        if text.trim() != text {
            return Err(PatternError::SurroundingSpaces(text.into()));
        }
        if text == "**" {
            return Ok(RepositoryPattern { text: text.into(), host: HostPattern::Any, path: vec![Segment::AnyDepth] });
        }
        if text.contains('@') {
            return Err(PatternError::Digest(text.into()));
        }
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(PatternError::UpperCase(text.into()));
        }
        let (host, path) = match text.split_once('/') {
            None if text.split_once(':').is_some_and(|(_, after)| !after.bytes().all(|b| b.is_ascii_digit())) => {
                return Err(PatternError::Tag(text.into()));
            }
            None if text == "localhost" || text.contains(['.', ':']) => {
                return Err(PatternError::RegistryOnly(text.into()));
            }
            None => (DOCKER_HUB, text),
            Some((first, rest)) if is_registry_component(first) => {
                (if first == LEGACY_DOCKER_HUB { DOCKER_HUB } else { first }, rest)
            }
            Some(_) => (DOCKER_HUB, text),
        };
        let mut segments = Vec::new();
        if host == DOCKER_HUB && !path.contains('/') && path != "**" {
            segments.push(Segment::Glob(OFFICIAL_NAMESPACE.into()));
        }
        let host = parse_host(host).map_err(|problem| PatternError::Host {
            pattern: text.into(),
            host: host.into(),
            problem,
        })?;
        for segment in path.split('/') {
            segments.push(
                parse_segment(segment).map_err(|problem| PatternError::Segment { pattern: text.into(), problem })?,
            );
        }
        Ok(RepositoryPattern { text: text.into(), host, path: segments })
    }

    /// True when `gun` is a repository this pattern covers. The GUN is normalised as docker
    /// would first (`nginx` is `docker.io/library/nginx`); one that is not a valid docker
    /// repository name matches no pattern, so callers parse references with
    /// [`ImageReference::parse`](super::reference::ImageReference::parse) first, which
    /// refuses such names.
    pub fn matches(&self, gun: &str) -> bool {
        match normalize_name(gun) {
            Ok(gun) => self.matches_normalized(&gun),
            Err(_) => false,
        }
    }

    /// [`matches`](Self::matches) for a GUN already normalised (as `ImageReference::gun` is).
    pub fn matches_normalized(&self, gun: &str) -> bool {
        let (host, path) = split_gun(gun);
        if path.is_empty() {
            return false;
        }
        let host_ok = match &self.host {
            HostPattern::Any => true,
            HostPattern::Labels(labels) => {
                let parts = host_parts(host);
                parts.len() == labels.len() && labels.iter().zip(&parts).all(|(pattern, part)| glob(pattern, part))
            }
        };
        host_ok && path_matches(&self.path, &path.split('/').collect::<Vec<_>>())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The pattern as it is matched, host included: `prod/**` is `docker.io/prod/**`.
    pub fn normalized(&self) -> String {
        let path = self
            .path
            .iter()
            .map(|segment| match segment {
                Segment::AnyDepth => "**",
                Segment::Glob(glob) => glob.as_str(),
            })
            .collect::<Vec<_>>()
            .join("/");
        match &self.host {
            HostPattern::Any => "**".into(),
            HostPattern::Labels(labels) => format!("{}/{path}", labels.concat()),
        }
    }
}

impl fmt::Display for RepositoryPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Splits a host into labels and the separators between them, keeping the separators.
fn host_parts(host: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, b) in host.bytes().enumerate() {
        if b == b'.' || b == b':' {
            parts.push(&host[start..i]);
            parts.push(&host[i..i + 1]);
            start = i + 1;
        }
    }
    parts.push(&host[start..]);
    parts
}

fn parse_host(host: &str) -> Result<HostPattern, HostProblem> {
    if host.contains("**") {
        return Err(HostProblem::DoubleStar);
    }
    if host.starts_with('[') {
        return Err(HostProblem::Ipv6);
    }
    let (name, port) = match host.split_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if let Some(port) = port
        && port != "*"
        && !valid_port(port)
    {
        return Err(HostProblem::Port);
    }
    for label in name.split('.') {
        let valid = if label.contains('*') {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'*')
        } else {
            valid_host_label(label)
        };
        if !valid {
            return Err(HostProblem::Label(label.into()));
        }
    }
    Ok(HostPattern::Labels(host_parts(host).into_iter().map(str::to_string).collect()))
}

fn parse_segment(segment: &str) -> Result<Segment, SegmentProblem> {
    if segment.is_empty() {
        return Err(SegmentProblem::Empty);
    }
    if segment == "**" {
        return Ok(Segment::AnyDepth);
    }
    if segment.contains("**") {
        return Err(SegmentProblem::PartialDoubleStar(segment.into()));
    }
    if segment.contains(':') {
        return Err(SegmentProblem::Tag(segment.into()));
    }
    let valid = if segment.contains('*') {
        segment.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-' | b'*'))
    } else {
        valid_path_component(segment)
    };
    if !valid {
        return Err(SegmentProblem::Invalid(segment.into()));
    }
    Ok(Segment::Glob(segment.into()))
}

/// Matches path segments against pattern segments, anchored at both ends. Dynamic
/// programming, so many `**` cannot make it exponential.
fn path_matches(pattern: &[Segment], segments: &[&str]) -> bool {
    // reachable[j]: the pattern so far can consume exactly the first j segments.
    let mut reachable = vec![false; segments.len() + 1];
    reachable[0] = true;
    for part in pattern {
        let mut next = vec![false; segments.len() + 1];
        match part {
            Segment::AnyDepth => {
                let mut seen = false;
                for j in 0..=segments.len() {
                    seen |= reachable[j];
                    next[j] = seen;
                }
            }
            Segment::Glob(glob_text) => {
                for j in 0..segments.len() {
                    if reachable[j] && glob(glob_text, segments[j]) {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reachable = next;
    }
    reachable[segments.len()]
}

/// `*` matches any run of bytes (none included), everything else matches itself;
/// anchored at both ends. The text holds no separators: callers split first.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // The last `*` seen and where in the text its match ends so far.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((star_pi, star_ti)) = star {
            pi = star_pi + 1;
            ti = star_ti + 1;
            star = Some((star_pi, star_ti + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> RepositoryPattern {
        RepositoryPattern::parse(text).unwrap_or_else(|e| panic!("{text:?} was refused: {e}"))
    }

    #[test]
    fn matching_table() {
        let cases: &[(&str, &str, bool)] = &[
            // Literal.
            ("registry.example.com/prod/app", "registry.example.com/prod/app", true),
            ("registry.example.com/prod/app", "registry.example.com/prod/app2", false),
            ("registry.example.com/prod/app", "registry.example.com/prod", false),
            ("registry.example.com/prod/app", "registry.example.com/prod/app/x", false),
            // `**`: zero or more segments.
            ("registry.example.com/prod/**", "registry.example.com/prod/app", true),
            ("registry.example.com/prod/**", "registry.example.com/prod/a/b/c", true),
            ("registry.example.com/prod/**", "registry.example.com/production/x", false),
            ("registry.example.com/prod/**", "registry.example.com/staging/prod/x", false),
            ("registry.example.com/prod/**", "registry.example.com.evil.io/prod/x", false),
            ("registry.example.com/prod/**", "evil.io/registry.example.com/prod/x", false),
            ("registry.example.com/prod/**", "registry.example.com:5000/prod/x", false),
            ("registry.example.com/**/app", "registry.example.com/app", true),
            ("registry.example.com/**/app", "registry.example.com/a/b/app", true),
            ("registry.example.com/**/app", "registry.example.com/a/b/app2", false),
            ("registry.example.com/**/x/**", "registry.example.com/a/x/b", true),
            ("registry.example.com/**/x/**", "registry.example.com/x", true),
            ("registry.example.com/**/x/**", "registry.example.com/a/y/b", false),
            // `*` stays within one segment.
            ("registry.example.com/prod/*", "registry.example.com/prod/app", true),
            ("registry.example.com/prod/*", "registry.example.com/prod/a/b", false),
            ("registry.example.com/*/app", "registry.example.com/team/app", true),
            ("registry.example.com/*/app", "registry.example.com/a/b/app", false),
            ("registry.example.com/prod/app-*", "registry.example.com/prod/app-web", true),
            ("registry.example.com/prod/app-*", "registry.example.com/prod/app", false),
            ("registry.example.com/prod/*-web*", "registry.example.com/prod/app-web-2", true),
            ("registry.example.com/prod/*.*", "registry.example.com/prod/a.b", true),
            // Hosts: `*` within one label.
            ("*.example.com/app", "a.example.com/app", true),
            ("*.example.com/app", "a.b.example.com/app", false),
            ("*.example.com/app", "example.com/app", false),
            ("*.example.com/app", "a.example.com.evil.io/app", false),
            ("*.*.example.com/app", "a.b.example.com/app", true),
            ("registry*.example.com/app", "registry.example.com/app", true),
            ("registry*.example.com/app", "registry-2.example.com/app", true),
            ("registry.example.com:*/app", "registry.example.com:5000/app", true),
            ("registry.example.com:*/app", "registry.example.com/app", false),
            ("registry.example.com:5000/app", "registry.example.com:5000/app", true),
            ("registry.example.com:5000/app", "registry.example.com:5001/app", false),
            ("localhost:*/**", "localhost:5000/a/b", true),
            ("localhost/**", "localhost:5000/a", false),
            // Portieris v0.14.2: never glob over the whole reference.
            ("*.trusted.example.com/org/*", "x.trusted.example.com/org/app", true),
            ("*.trusted.example.com/org/*", "attacker.example.com/x.trusted.example.com/org/evil", false),
            ("*.trusted.example.com/org/*", "x.trusted.example.com/org/evil/more", false),
            // Docker Hub, as docker normalises it.
            ("nginx", "docker.io/library/nginx", true),
            ("nginx", "nginx", true),
            ("nginx", "index.docker.io/library/nginx", true),
            ("nginx", "docker.io/acme/nginx", false),
            ("nginx", "registry-1.docker.io/library/nginx", false),
            ("docker.io/nginx", "docker.io/library/nginx", true),
            ("index.docker.io/nginx", "docker.io/library/nginx", true),
            ("library/*", "docker.io/library/alpine", true),
            ("docker.io/*", "docker.io/library/alpine", true),
            ("docker.io/*", "docker.io/acme/app", false),
            ("docker.io/**", "docker.io/acme/app", true),
            ("docker.io/**", "docker.io/library/alpine", true),
            ("docker.io/**", "registry.example.com/acme/app", false),
            ("prod/**", "docker.io/prod/app", true),
            ("prod/**", "registry.example.com/prod/app", false),
            ("*/app", "docker.io/acme/app", true),
            ("*/app", "registry.example.com/app", false),
            // Everything.
            ("**", "docker.io/library/nginx", true),
            ("**", "registry.example.com:5000/a/b/c", true),
            // Anchored: no partial matches.
            ("registry.example.com/app", "registry.example.com/app-evil", false),
            ("registry.example.com/app", "xregistry.example.com/app", false),
            // Invalid GUNs match nothing.
            ("**", "Registry.example.com/app", false),
            ("**", "registry.example.com/", false),
            ("**", "nginx:latest", false),
        ];
        for &(text, gun, expected) in cases {
            assert_eq!(pattern(text).matches(gun), expected, "{text} vs {gun}");
        }
    }

    #[test]
    fn portieris_bypass_is_closed() {
        let trusted = pattern("*.trusted.example.com/org/*");
        assert!(!trusted.matches("attacker.example.com/x.trusted.example.com/org/evil"));
        let prod = pattern("registry.example.com/prod/**");
        assert!(!prod.matches("registry.example.com.evil.io/prod/x"));
        assert!(!prod.matches("registry.example.com/production/x"));
        assert!(prod.matches("registry.example.com/prod/x"));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for (text, hint) in [
            ("", "empty"),
            (" nginx", "spaces"),
            ("Registry.example.com/**", "lower case"),
            ("registry.example.com/App", "lower case"),
            ("registry.example.com", "every repository on it"),
            ("localhost:5000", "every repository on it"),
            ("localhost", "every repository on it"),
            ("**.example.com/app", "'**' is for paths"),
            ("registry.example.com/prod/**x", "whole segment"),
            ("registry.example.com/prod/***", "whole segment"),
            ("registry.example.com/prod/", "empty path segment"),
            ("registry.example.com//prod", "empty path segment"),
            ("registry.example.com/prod/app:v1", "not tags"),
            ("nginx:latest", "not tags"),
            ("registry.example.com/app@sha256:00", "digest"),
            ("registry.example.com/a..b", "path segments"),
            ("registry.example.com/a b", "path segments"),
            ("registry.example.com/a?b", "path segments"),
            ("registry.example.com/[ab]", "path segments"),
            ("reg_istry.example.com/app", "host labels"),
            ("registry..example.com/app", "host labels"),
            ("registry.example.com:99999/app", "port"),
            ("registry.example.com:5*/app", "port"),
            ("[::1]/app", "IPv6"),
        ] {
            match RepositoryPattern::parse(text) {
                Ok(parsed) => panic!("{text:?} was accepted as {}", parsed.normalized()),
                Err(error) => assert!(error.to_string().contains(hint), "{text:?}: {error}"),
            }
        }
    }

    #[test]
    fn normalized_form_and_text() {
        for (text, normalized) in [
            ("nginx", "docker.io/library/nginx"),
            ("prod/**", "docker.io/prod/**"),
            ("docker.io/**", "docker.io/**"),
            ("docker.io/*", "docker.io/library/*"),
            ("index.docker.io/acme/*", "docker.io/acme/*"),
            ("*.example.com:*/a/**", "*.example.com:*/a/**"),
            ("**", "**"),
        ] {
            let parsed = pattern(text);
            assert_eq!(parsed.normalized(), normalized, "{text}");
            assert_eq!(parsed.as_str(), text);
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn glob_is_anchored_and_linear_enough() {
        assert!(glob("*", ""));
        assert!(glob("a*", "a"));
        assert!(!glob("a", "ab"));
        assert!(!glob("b", "ab"));
        assert!(glob("*b*", "abc"));
        assert!(!glob("a*c", "abcd"));
        assert!(glob("a*b*c", "aXbYbZc"));
        let long = "a".repeat(200);
        assert!(!glob(&format!("{}b", "*a".repeat(50)), &long));
        let many = RepositoryPattern::parse(&format!("registry.example.com/{}x", "**/".repeat(60))).unwrap();
        let deep = format!("registry.example.com/{}y", "a/".repeat(100));
        assert!(!many.matches(&deep));
    }
}
