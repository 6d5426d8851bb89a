//! User accounts: the bootstrap admin, creation, listing and changes.

use time::OffsetDateTime;

use super::{AuthService, Caller, conflict};
use crate::auth::{AuthError, secrets, valid_name};
use crate::store::{AuditRecord, UserChange, UserRecord};

impl AuthService {
    /// Makes `NOTARIUS_BOOTSTRAP_ADMIN` the first user, unless any user exists.
    pub async fn bootstrap_admin(&self, name: &str, password: &str) -> Result<bool, AuthError> {
        check_user_name(name)?;
        secrets::check_password_rules(password)?;
        let record = UserRecord {
            name: name.into(),
            password_hash: secrets::hash_password(password).await?,
            admin: true,
            disabled: false,
            created_at: OffsetDateTime::now_utc(),
        };
        let audit = AuditRecord {
            at: record.created_at,
            actor: "NOTARIUS_BOOTSTRAP_ADMIN".into(),
            action: "user.create".into(),
            repository: None,
            detail: serde_json::json!({ "user": name, "admin": true }),
            remote_addr: String::new(),
        };
        let created = self.store.insert_first_user(record, &audit).await?;
        self.reload().await?;
        Ok(created)
    }

    pub async fn create_user(
        &self,
        caller: &Caller,
        name: &str,
        password: &str,
        admin: bool,
    ) -> Result<UserSummary, AuthError> {
        // On an open server the first account must be an admin, or nobody could manage
        // the server once auth applies.
        if self.is_open() && !admin {
            return Err(AuthError::Invalid("the first user must be an admin (\"admin\": true)".into()));
        }
        self.require_admin(caller)?;
        // Lasting credentials and rights need a durable credential too, not a registry
        // token: see `require_durable_credential` (tests/attack_auth.rs, au05).
        self.require_durable_credential(caller)?;
        check_user_name(name)?;
        secrets::check_password_rules(password)?;
        let record = UserRecord {
            name: name.into(),
            password_hash: secrets::hash_password(password).await?,
            admin,
            disabled: false,
            created_at: OffsetDateTime::now_utc(),
        };
        let audit = caller.audit("user.create", None, serde_json::json!({ "user": name, "admin": admin }));
        self.store.insert_user(record, &audit).await.map_err(conflict)?;
        self.reload().await?;
        Ok(UserSummary { name: name.into(), admin, disabled: false })
    }

    pub fn users(&self, caller: &Caller) -> Result<Vec<UserSummary>, AuthError> {
        self.require_admin(caller)?;
        let model = self.model();
        let mut users: Vec<UserSummary> =
            model.users().map(|u| UserSummary { name: u.name.clone(), admin: u.admin, disabled: u.disabled }).collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(users)
    }

    /// `PATCH /v1/users/{user}`: users change their own password; admins change
    /// anything. The last enabled admin cannot be disabled or demoted.
    pub async fn update_user(
        &self,
        caller: &Caller,
        name: &str,
        password: Option<&str>,
        disabled: Option<bool>,
        admin: Option<bool>,
    ) -> Result<(), AuthError> {
        self.require_self_or_admin(caller, name)?;
        // A registry token may not promote a user either (tests/attack_auth.rs, au05).
        if password.is_some() || admin.is_some() {
            self.require_durable_credential(caller)?;
        }
        let model = self.model();
        let target = model.user(name).ok_or_else(|| AuthError::NotFound(format!("no user {name}")))?;
        if (disabled.is_some() || admin.is_some()) && !self.is_admin(caller) {
            return Err(AuthError::Denied("only an admin may disable a user or change admin rights".into()));
        }
        let loses_admin = target.admin && !target.disabled && (disabled == Some(true) || admin == Some(false));
        if loses_admin && model.admin_count() <= 1 {
            return Err(AuthError::Conflict(format!("{name} is the last enabled admin")));
        }
        let mut change = UserChange { admin, disabled, ..Default::default() };
        if let Some(password) = password {
            secrets::check_password_rules(password)?;
            change.password_hash = Some(secrets::hash_password(password).await?);
        }
        let detail = serde_json::json!({
            "user": name, "password_changed": password.is_some(), "disabled": disabled, "admin": admin,
        });
        let audit = caller.audit("user.update", None, detail);
        if !self.store.update_user(name, change, &audit).await? {
            return Err(AuthError::NotFound(format!("no user {name}")));
        }
        self.reload().await
    }
}

fn check_user_name(name: &str) -> Result<(), AuthError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "name: {name:?} is not a valid user name (lowercase letters, digits, '.', '_', '-'; at most 64)"
        )))
    }
}

/// A user as the API lists them.
#[derive(Debug, Clone)]
pub struct UserSummary {
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
}
