//! The audit log: admins read it; every change writes its record in the change's transaction.

use super::{AuthService, Caller};
use crate::auth::AuthError;
use crate::store::AuditRecord;

impl AuthService {
    pub fn require_server_admin(&self, caller: &Caller) -> Result<(), AuthError> {
        self.require_admin(caller)
    }

    pub async fn audit_log(&self, caller: &Caller, limit: i64) -> Result<Vec<AuditRecord>, AuthError> {
        self.require_admin(caller)?;
        Ok(self.store.audit_log(limit.clamp(1, 10_000)).await?)
    }

    pub async fn append_audit(&self, record: &AuditRecord) -> Result<(), AuthError> {
        Ok(self.store.append_audit(record).await?)
    }
}
