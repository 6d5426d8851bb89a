//! Grants of read, write or admin on a repository or a namespace (`prefix/*`).

use time::OffsetDateTime;

use super::{AuthService, Caller};
use crate::auth::model::{RepositoryPattern, Subject};
use crate::auth::{Access, AuthError};
use crate::store::GrantRecord;

impl AuthService {
    /// Checks a grant request and the caller's right to make it: admin on everything
    /// the grant covers (DESIGN §5: write does not let a user share a repository).
    pub(super) fn checked_grant(&self, caller: &Caller, grant: &GrantRequest) -> Result<GrantRecord, AuthError> {
        // Not `require_account`: a grant outlives a registry token, and the token's scope
        // is not checked here (tests/attack_auth.rs, au05).
        self.require_durable_credential(caller)?;
        let pattern = RepositoryPattern::parse(&grant.repository)
            .ok_or_else(|| AuthError::Invalid("repository: give a GUN or prefix/*".into()))?;
        let access = Access::parse(&grant.access)
            .ok_or_else(|| AuthError::Invalid("access: one of read, write, admin".into()))?;
        let model = self.model();
        let (kind, subject) = match (&grant.user, &grant.team) {
            (Some(user), None) => {
                model.user(user).ok_or_else(|| AuthError::NotFound(format!("no user {user}")))?;
                ("user", user.clone())
            }
            (None, Some(team)) => {
                model.team_members(team).ok_or_else(|| AuthError::NotFound(format!("no team {team}")))?;
                ("team", team.clone())
            }
            _ => return Err(AuthError::Invalid("give exactly one of user and team".into())),
        };
        if !self.is_admin(caller) {
            let user = caller.user.as_deref().unwrap_or_default();
            if model.access_to_pattern(user, &pattern) != Some(Access::Admin) {
                return Err(self.hidden_or_denied(caller, &pattern, "granting access needs admin on the repository"));
            }
        }
        Ok(GrantRecord {
            repository: pattern.to_string(),
            subject_kind: kind.into(),
            subject,
            access: access.as_str().into(),
        })
    }

    /// For a caller without read on an exact private repository, the repository does
    /// not exist; otherwise they are denied.
    pub(super) fn hidden_or_denied(&self, caller: &Caller, pattern: &RepositoryPattern, reason: &str) -> AuthError {
        if let RepositoryPattern::Exact(gun) = pattern
            && self.model().access(caller.user.as_deref(), gun).is_none()
        {
            return AuthError::NotFound(format!("no repository {gun}"));
        }
        AuthError::Denied(reason.into())
    }

    pub async fn put_grant(&self, caller: &Caller, request: &GrantRequest) -> Result<GrantRecord, AuthError> {
        let grant = self.checked_grant(caller, request)?;
        let audit = caller.audit(
            "grant.add",
            Some(&grant.repository),
            serde_json::json!({ grant.subject_kind.clone(): grant.subject, "access": grant.access }),
        );
        self.store.put_grant(&grant, OffsetDateTime::now_utc(), &audit).await?;
        self.reload().await?;
        Ok(grant)
    }

    pub async fn delete_grant(&self, caller: &Caller, request: &GrantRequest) -> Result<(), AuthError> {
        let grant = self.checked_grant(caller, request)?;
        let audit = caller.audit(
            "grant.remove",
            Some(&grant.repository),
            serde_json::json!({ grant.subject_kind.clone(): grant.subject, "access": grant.access }),
        );
        if !self.store.delete_grant(&grant, &audit).await? {
            return Err(AuthError::NotFound("no such grant".into()));
        }
        self.reload().await
    }

    /// Every grant for an admin; for others, the grants on repositories they administer
    /// and the grants to themselves and their teams.
    pub fn grants(&self, caller: &Caller) -> Result<Vec<GrantRecord>, AuthError> {
        self.require_account(caller)?;
        let model = self.model();
        let admin = self.is_admin(caller);
        let user = caller.user.as_deref().unwrap_or_default();
        let teams = model.user(user).map(|u| u.teams.clone()).unwrap_or_default();
        Ok(model
            .grants()
            .iter()
            .filter(|g| {
                admin
                    || match &g.subject {
                        Subject::User(name) => name == user,
                        Subject::Team(team) => teams.contains(team),
                    }
                    || model.access_to_pattern(user, &g.pattern) == Some(Access::Admin)
            })
            .map(|g| {
                let (kind, subject) = match &g.subject {
                    Subject::User(name) => ("user", name.clone()),
                    Subject::Team(team) => ("team", team.clone()),
                };
                GrantRecord {
                    repository: g.pattern.to_string(),
                    subject_kind: kind.into(),
                    subject,
                    access: g.access.as_str().into(),
                }
            })
            .collect())
    }
}

/// A grant as asked for: checked by the service before anything is stored.
#[derive(Debug, Clone)]
pub struct GrantRequest {
    pub repository: String,
    pub user: Option<String>,
    pub team: Option<String>,
    pub access: String,
}
