//! Users' keys: client bundles from the user CA, registered certificates, revocation, and
//! tracing a signing key back to its user.

use time::OffsetDateTime;

use super::{AuthService, Caller, conflict};
use crate::auth::AuthError;
use crate::auth::certs::{Bundle, UserCertificate, check_user_certificate};
use crate::store::UserKeyRecord;

impl AuthService {
    /// The enabled user who holds the (unrevoked) key with this public key, and their
    /// teams, read now: membership and key revocation count at decision time.
    pub async fn key_owner(
        &self,
        material: &crate::tuf::keys::KeyMaterial,
    ) -> Result<Option<(String, Vec<String>)>, AuthError> {
        let digest = crate::auth::certs::public_key_digest(material);
        let Some(key) = self.store.user_key_by_public(&digest).await? else {
            return Ok(None);
        };
        let model = self.model();
        Ok(model.active_user(&key.user).map(|u| (u.name.clone(), u.teams.clone())))
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca.cert_pem
    }

    pub async fn issue_bundle(&self, caller: &Caller, user: &str) -> Result<Bundle, AuthError> {
        self.require_self_or_admin(caller, user)?;
        // Lasting credentials and rights need a durable credential too, not a registry
        // token: see `require_durable_credential` (tests/attack_auth.rs, au05).
        self.require_durable_credential(caller)?;
        self.model().user(user).ok_or_else(|| AuthError::NotFound(format!("no user {user}")))?;
        let bundle = self.ca.issue(user, self.settings.bundle_validity)?;
        self.record_user_key(caller, user, &bundle.certificate, "bundle", true).await?;
        Ok(bundle)
    }

    pub async fn register_key(
        &self,
        caller: &Caller,
        user: &str,
        certificate_pem: &str,
        label: Option<&str>,
    ) -> Result<UserKeyRecord, AuthError> {
        self.require_self_or_admin(caller, user)?;
        // Lasting credentials and rights need a durable credential too, not a registry
        // token: see `require_durable_credential` (tests/attack_auth.rs, au05).
        self.require_durable_credential(caller)?;
        self.model().user(user).ok_or_else(|| AuthError::NotFound(format!("no user {user}")))?;
        let certificate = check_user_certificate(certificate_pem, OffsetDateTime::now_utc())?;
        if let Some(owner) = self.store.user_key_by_public(&certificate.public_sha256).await? {
            return Err(AuthError::Conflict(if owner.user == user {
                format!("this key is registered already as {}", owner.key_id)
            } else {
                "this key belongs to another user".into()
            }));
        }
        self.record_user_key(caller, user, &certificate, label.unwrap_or(""), false).await
    }

    pub(super) async fn record_user_key(
        &self,
        caller: &Caller,
        user: &str,
        certificate: &UserCertificate,
        label: &str,
        issued: bool,
    ) -> Result<UserKeyRecord, AuthError> {
        let record = UserKeyRecord {
            key_id: certificate.key_id.clone(),
            canonical_key_id: certificate.canonical_key_id.clone(),
            user: user.into(),
            public_sha256: certificate.public_sha256.clone(),
            certificate_pem: certificate.cert_pem.clone(),
            label: label.into(),
            issued,
            created_at: OffsetDateTime::now_utc(),
            revoked_at: None,
        };
        let action = if issued { "key.issue" } else { "key.register" };
        let audit = caller.audit(action, None, serde_json::json!({ "user": user, "key_id": record.key_id }));
        self.store.insert_user_key(&record, &audit).await.map_err(conflict)?;
        self.bump_version();
        Ok(record)
    }

    pub async fn user_keys(&self, caller: &Caller, user: &str) -> Result<Vec<UserKeyRecord>, AuthError> {
        self.require_self_or_admin(caller, user)?;
        self.model().user(user).ok_or_else(|| AuthError::NotFound(format!("no user {user}")))?;
        Ok(self.store.user_keys(user).await?)
    }

    pub async fn revoke_key(&self, caller: &Caller, user: &str, key_id: &str) -> Result<(), AuthError> {
        self.require_self_or_admin(caller, user)?;
        let audit = caller.audit("key.revoke", None, serde_json::json!({ "user": user, "key_id": key_id }));
        if !self.store.revoke_user_key(user, key_id, &audit).await? {
            return Err(AuthError::NotFound(format!("{user} has no active key {key_id}")));
        }
        self.bump_version();
        Ok(())
    }
}
