//! Repository settings: visibility, the creator recorded at the first publish, and which
//! repositories a caller may read.

use time::OffsetDateTime;

use super::{AuthService, Caller};
use crate::auth::model::RepositoryPattern;
use crate::auth::{Access, Action, AuthError};

use crate::store::{GrantRecord, RepositoryRegistration, RepositorySettings};

impl AuthService {
    pub async fn set_visibility(&self, caller: &Caller, gun: &str, public: bool) -> Result<(), AuthError> {
        self.require_account(caller)?;
        let gun = crate::tuf::Gun::parse(gun).map_err(|e| AuthError::Invalid(format!("repository: {e}")))?;
        let pattern = RepositoryPattern::Exact(gun.to_string());
        if self.repository_actions(caller, gun.as_str()).last() != Some(&Action::All) && !self.is_admin(caller) {
            return Err(self.hidden_or_denied(caller, &pattern, "changing visibility needs admin on the repository"));
        }
        let model = self.model();
        let settings = RepositorySettings {
            gun: gun.to_string(),
            public,
            created_by: model.repository(gun.as_str()).map(|r| r.created_by.clone()).unwrap_or_default(),
            created_at: model.repository(gun.as_str()).map_or_else(OffsetDateTime::now_utc, |r| r.created_at),
        };
        let audit = caller.audit("repository.visibility", Some(gun.as_str()), serde_json::json!({ "public": public }));
        self.store.set_visibility(&settings, &audit).await?;
        self.reload().await
    }

    /// What the first accepted publish of `gun` records about it: its settings and admin
    /// on it for its creator (DESIGN §5). None once it is recorded. The publish writes it
    /// in its own transaction; [`AuthService::reload`] then makes the grant effective.
    pub fn registration_for(&self, caller: &Caller, gun: &str) -> Option<RepositoryRegistration> {
        if self.model().repository(gun).is_some() {
            return None;
        }
        let settings = RepositorySettings {
            gun: gun.into(),
            public: self.settings.default_public,
            created_by: caller.user.clone().unwrap_or_default(),
            created_at: OffsetDateTime::now_utc(),
        };
        let creator_grant = caller.user.as_ref().map(|user| GrantRecord {
            repository: gun.into(),
            subject_kind: "user".into(),
            subject: user.clone(),
            access: Access::Admin.as_str().into(),
        });
        let audit = caller.audit("repository.create", Some(gun), serde_json::json!({ "public": settings.public }));
        Some(RepositoryRegistration { settings, creator_grant, audit })
    }

    /// Every repository holding trust data that the caller may read, with its visibility,
    /// creation time and roles, in name order.
    pub async fn repositories(&self, caller: &Caller) -> Result<Vec<ReadableRepository>, AuthError> {
        self.require_account(caller)?;
        const PAGE: i64 = 1000;
        let model = self.model();
        let mut readable = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.repositories(after.as_deref(), PAGE).await?;
            let full = page.len() as i64 == PAGE;
            after = page.last().map(|r| r.gun.clone());
            for summary in page {
                if !self.repository_actions(caller, &summary.gun).contains(&Action::Pull) {
                    continue;
                }
                let settings = model.repository(&summary.gun);
                readable.push(ReadableRepository {
                    public: settings.map_or(model.default_public(), |s| s.public),
                    created_at: settings.map_or(summary.first_stored_at, |s| s.created_at),
                    roles: summary.roles,
                    name: summary.gun,
                });
            }
            if !full {
                return Ok(readable);
            }
        }
    }
}

/// A repository as `GET /v1/repositories` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadableRepository {
    pub name: String,
    pub public: bool,
    pub created_at: OffsetDateTime,
    pub roles: Vec<String>,
}
