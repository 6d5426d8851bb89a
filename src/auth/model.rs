//! Access decisions from a snapshot of users, teams, grants and repository settings.

use std::collections::HashMap;

use super::{Access, namespace_of, path_of};
use crate::store::{AccountSnapshot, RepositorySettings};

/// What a repository grant applies to: one GUN, or every GUN under `prefix/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepositoryPattern {
    Exact(String),
    /// Written `prefix/*`; holds `prefix`.
    Prefix(String),
}

impl RepositoryPattern {
    /// A GUN or `prefix/*`; `None` for anything else (wildcards elsewhere, empty parts).
    pub fn parse(text: &str) -> Option<RepositoryPattern> {
        if let Some(prefix) = text.strip_suffix("/*") {
            if prefix.is_empty() || prefix.contains('*') || crate::tuf::Gun::parse(prefix).is_err() {
                return None;
            }
            return Some(RepositoryPattern::Prefix(prefix.to_owned()));
        }
        crate::tuf::Gun::parse(text).ok().map(|gun| RepositoryPattern::Exact(gun.as_str().to_owned()))
    }

    /// A prefix matches on segment boundaries, with or without the registry host, as
    /// namespaces do: `prod/*` covers `prod/app` and `registry.example.com/prod/app`.
    pub fn matches(&self, gun: &str) -> bool {
        match self {
            RepositoryPattern::Exact(exact) => exact == gun,
            RepositoryPattern::Prefix(prefix) => {
                let under = |name: &str| name.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.starts_with('/'));
                under(gun) || under(path_of(gun))
            }
        }
    }

    /// True when every GUN this pattern covers is also covered by `other`.
    pub fn within(&self, other: &RepositoryPattern) -> bool {
        match self {
            RepositoryPattern::Exact(gun) => other.matches(gun),
            // Prefix matching is by leading segments, so one name under `prefix/`
            // stands for all of them.
            RepositoryPattern::Prefix(prefix) => {
                matches!(other, RepositoryPattern::Prefix(_)) && other.matches(&format!("{prefix}/x"))
            }
        }
    }

    /// The namespace every GUN under the pattern is in, if there is one.
    pub fn namespace(&self) -> &str {
        match self {
            RepositoryPattern::Exact(gun) => namespace_of(gun),
            RepositoryPattern::Prefix(prefix) => namespace_of(prefix),
        }
    }
}

impl std::fmt::Display for RepositoryPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepositoryPattern::Exact(gun) => f.write_str(gun),
            RepositoryPattern::Prefix(prefix) => write!(f, "{prefix}/*"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    User(String),
    Team(String),
}

#[derive(Debug, Clone)]
pub struct Grant {
    pub pattern: RepositoryPattern,
    pub subject: Subject,
    pub access: Access,
}

#[derive(Debug, Clone)]
pub struct UserEntry {
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
    pub password_hash: String,
    pub teams: Vec<String>,
}

/// The access rules of one moment. Rebuilt after every change to the rows it is made of.
#[derive(Debug, Default)]
pub struct AccessModel {
    users: HashMap<String, UserEntry>,
    teams: HashMap<String, Vec<String>>,
    grants: Vec<Grant>,
    repositories: HashMap<String, RepositorySettings>,
    /// Visibility of repositories created without an explicit one.
    default_public: bool,
}

impl AccessModel {
    pub fn new(snapshot: AccountSnapshot, default_public: bool) -> AccessModel {
        let mut users: HashMap<String, UserEntry> = snapshot
            .users
            .into_iter()
            .map(|u| {
                let entry = UserEntry {
                    name: u.name.clone(),
                    admin: u.admin,
                    disabled: u.disabled,
                    password_hash: u.password_hash,
                    teams: Vec::new(),
                };
                (u.name, entry)
            })
            .collect();
        for team in &snapshot.teams {
            for member in &team.members {
                if let Some(user) = users.get_mut(member) {
                    user.teams.push(team.name.clone());
                }
            }
        }
        let grants = snapshot
            .grants
            .into_iter()
            .filter_map(|g| {
                Some(Grant {
                    pattern: RepositoryPattern::parse(&g.repository)?,
                    subject: match g.subject_kind.as_str() {
                        "team" => Subject::Team(g.subject),
                        _ => Subject::User(g.subject),
                    },
                    access: Access::parse(&g.access)?,
                })
            })
            .collect();
        AccessModel {
            users,
            teams: snapshot.teams.into_iter().map(|t| (t.name, t.members)).collect(),
            grants,
            repositories: snapshot.repositories.into_iter().map(|r| (r.gun.clone(), r)).collect(),
            default_public,
        }
    }

    /// With no account at all the server is open: the quickstart works unauthenticated.
    pub fn is_open(&self) -> bool {
        self.users.is_empty()
    }

    /// An enabled user.
    pub fn active_user(&self, name: &str) -> Option<&UserEntry> {
        self.users.get(name).filter(|u| !u.disabled)
    }

    pub fn user(&self, name: &str) -> Option<&UserEntry> {
        self.users.get(name)
    }

    pub fn users(&self) -> impl Iterator<Item = &UserEntry> {
        self.users.values()
    }

    pub fn team_members(&self, team: &str) -> Option<&[String]> {
        self.teams.get(team).map(Vec::as_slice)
    }

    pub fn teams(&self) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.teams.iter()
    }

    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    pub fn repository(&self, gun: &str) -> Option<&RepositorySettings> {
        self.repositories.get(gun)
    }

    /// Only a recorded repository can be public: a name nobody created reads as private,
    /// so anonymous callers cannot tell a private repository from a missing one.
    pub fn is_public(&self, gun: &str) -> bool {
        self.repositories.get(gun).is_some_and(|r| r.public)
    }

    pub fn default_public(&self) -> bool {
        self.default_public
    }

    /// Enabled admins.
    pub fn admin_count(&self) -> usize {
        self.users.values().filter(|u| u.admin && !u.disabled).count()
    }

    /// The access `user` (None: anonymous) has to `gun`: admins have all; a user owns
    /// the namespace of their name; grants to the user and the user's teams add up; a
    /// public repository is readable by everyone.
    pub fn access(&self, user: Option<&str>, gun: &str) -> Option<Access> {
        let public = self.is_public(gun).then_some(Access::Read);
        let Some(user) = user.and_then(|name| self.active_user(name)) else {
            return public;
        };
        if user.admin || namespace_of(gun) == user.name {
            return Some(Access::Admin);
        }
        self.grants
            .iter()
            .filter(|g| g.pattern.matches(gun) && self.applies_to(&g.subject, user))
            .map(|g| g.access)
            .chain(public)
            .max()
    }

    /// The access `user` has to every repository `pattern` covers: for a prefix, only
    /// what holds for the whole prefix (its namespace, or grants on a wider prefix).
    pub fn access_to_pattern(&self, user: &str, pattern: &RepositoryPattern) -> Option<Access> {
        match pattern {
            RepositoryPattern::Exact(gun) => self.access(Some(user), gun),
            RepositoryPattern::Prefix(_) => {
                let user = self.active_user(user)?;
                if user.admin || pattern.namespace() == user.name {
                    return Some(Access::Admin);
                }
                self.grants
                    .iter()
                    .filter(|g| pattern.within(&g.pattern) && self.applies_to(&g.subject, user))
                    .map(|g| g.access)
                    .max()
            }
        }
    }

    fn applies_to(&self, subject: &Subject, user: &UserEntry) -> bool {
        match subject {
            Subject::User(name) => *name == user.name,
            Subject::Team(team) => user.teams.contains(team),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{GrantRecord, TeamRecord, UserRecord};
    use time::OffsetDateTime;

    fn user(name: &str, admin: bool) -> UserRecord {
        UserRecord {
            name: name.into(),
            password_hash: String::new(),
            admin,
            disabled: false,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn grant(repository: &str, kind: &str, subject: &str, access: &str) -> GrantRecord {
        GrantRecord {
            repository: repository.into(),
            subject_kind: kind.into(),
            subject: subject.into(),
            access: access.into(),
        }
    }

    fn model() -> AccessModel {
        let mut disabled = user("mallory", true);
        disabled.disabled = true;
        AccessModel::new(
            AccountSnapshot {
                users: vec![
                    user("root", true),
                    user("alice", false),
                    user("bob", false),
                    user("carol", false),
                    disabled,
                ],
                teams: vec![TeamRecord { name: "ci".into(), members: vec!["carol".into()] }],
                grants: vec![
                    grant("prod/*", "team", "ci", "write"),
                    grant("bob/app", "user", "alice", "read"),
                    grant("bob/app", "team", "ci", "admin"),
                ],
                repositories: vec![
                    RepositorySettings {
                        gun: "bob/secret".into(),
                        public: false,
                        created_by: "bob".into(),
                        created_at: OffsetDateTime::UNIX_EPOCH,
                    },
                    RepositorySettings {
                        gun: "bob/public".into(),
                        public: true,
                        created_by: "bob".into(),
                        created_at: OffsetDateTime::UNIX_EPOCH,
                    },
                ],
            },
            true,
        )
    }

    #[test]
    fn owners_admins_grants_and_public_reads() {
        let m = model();
        assert!(!m.is_open());
        assert_eq!(m.access(Some("root"), "anything/at/all"), Some(Access::Admin));
        assert_eq!(m.access(Some("alice"), "docker.io/alice/app"), Some(Access::Admin));
        assert_eq!(m.access(Some("alice"), "bob/app"), Some(Access::Read));
        assert_eq!(m.access(Some("alice"), "bob/secret"), None);
        assert_eq!(m.access(Some("bob"), "bob/secret"), Some(Access::Admin));
        assert_eq!(m.access(None, "bob/secret"), None);
        assert_eq!(m.access(Some("carol"), "registry.example.com/prod/api"), Some(Access::Write));
        assert_eq!(m.access(Some("carol"), "prod/api/sub"), Some(Access::Write));
        assert_eq!(m.access(Some("carol"), "production/api"), None);
        assert_eq!(m.access(Some("carol"), "bob/public"), Some(Access::Read));
        assert_eq!(m.access(None, "bob/public"), Some(Access::Read));
        assert_eq!(m.access(Some("carol"), "bob/app"), Some(Access::Admin));
        // A disabled user is anonymous, whatever their rights were.
        assert_eq!(m.access(Some("mallory"), "bob/secret"), None);
        // Unrecorded repositories are not public, whatever the default.
        assert_eq!(m.access(Some("nobody"), "bob/app"), None);
        assert_eq!(m.access(None, "bob/app"), None);
    }

    #[test]
    fn prefix_access_needs_the_whole_prefix() {
        let m = model();
        let prod = RepositoryPattern::parse("prod/*").unwrap();
        assert_eq!(m.access_to_pattern("carol", &prod), Some(Access::Write));
        assert_eq!(m.access_to_pattern("carol", &RepositoryPattern::parse("prod/web/*").unwrap()), Some(Access::Write));
        assert_eq!(m.access_to_pattern("alice", &prod), None);
        assert_eq!(m.access_to_pattern("alice", &RepositoryPattern::parse("alice/*").unwrap()), Some(Access::Admin));
        // An exact grant does not cover a prefix.
        assert_eq!(m.access_to_pattern("carol", &RepositoryPattern::parse("bob/*").unwrap()), None);
    }

    #[test]
    fn patterns() {
        assert!(RepositoryPattern::parse("prod/*").is_some());
        assert!(RepositoryPattern::parse("*").is_none());
        assert!(RepositoryPattern::parse("pr*d/*").is_none());
        assert!(RepositoryPattern::parse("Prod/app").is_none());
        let p = RepositoryPattern::parse("prod/*").unwrap();
        assert!(
            p.matches("prod/a") && p.matches("localhost:5000/prod/a") && !p.matches("prod") && !p.matches("prodx/a")
        );
        assert_eq!(p.to_string(), "prod/*");
    }
}
