//! The audit log: admins read it; every change writes its record in the change's transaction.

use super::{AuthService, Caller};
use crate::auth::AuthError;
use crate::store::AuditRecord;

impl AuthService {
    pub async fn audit_log(&self, caller: &Caller, limit: i64) -> Result<Vec<AuditRecord>, AuthError> {
        self.require_admin(caller)?;
        Ok(self.store.audit_log(limit.clamp(1, 10_000)).await?)
    }
}
