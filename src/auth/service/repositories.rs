//! Repository settings: visibility, the creator recorded at the first publish, and which
//! repositories a caller may read.

use super::AuthService;
use super::Caller;
use crate::auth::Access;
use crate::auth::Action;
use crate::auth::AuthError;
use crate::auth::model::RepositoryPattern;
use crate::store::GrantRecord;
use crate::store::RepositorySettings;
use time::OffsetDateTime;

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

    /// Records the creator of a repository after its first accepted publish, with admin
    /// on it (DESIGN §5). Later publishes find it recorded and do nothing.
    pub async fn repository_published(&self, caller: &Caller, gun: &str) -> Result<(), AuthError> {
        if self.model().repository(gun).is_some() {
            return Ok(());
        }
        let settings = RepositorySettings {
            gun: gun.into(),
            public: self.settings.default_public,
            created_by: caller.user.clone().unwrap_or_default(),
            created_at: OffsetDateTime::now_utc(),
        };
        let grant = caller.user.as_ref().map(|user| GrantRecord {
            repository: gun.into(),
            subject_kind: "user".into(),
            subject: user.clone(),
            access: Access::Admin.as_str().into(),
        });
        let audit = caller.audit("repository.create", Some(gun), serde_json::json!({ "public": settings.public }));
        if self.store.register_repository(&settings, grant.as_ref(), &audit).await? {
            self.reload().await?;
        }
        Ok(())
    }

    /// The repositories of `guns` the caller may read, with their visibility and
    /// creation time.
    pub fn readable(&self, caller: &Caller, guns: Vec<String>) -> Vec<(String, bool, Option<OffsetDateTime>)> {
        let model = self.model();
        guns.into_iter()
            .filter(|gun| self.repository_actions(caller, gun).contains(&Action::Pull))
            .map(|gun| {
                let settings = model.repository(&gun);
                let public = settings.map_or(model.default_public(), |s| s.public);
                let created = settings.map(|s| s.created_at);
                (gun, public, created)
            })
            .collect()
    }
}
