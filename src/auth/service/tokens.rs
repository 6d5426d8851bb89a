//! Personal access tokens: minted once, listed without their secret, revoked.

use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{AuthService, Caller, FULL_SCOPE, POLICY_SCOPE, conflict};
use crate::auth::{AuthError, secrets};
use crate::store::TokenRecord;

impl AuthService {
    pub async fn create_token(
        &self,
        caller: &Caller,
        name: &str,
        scopes: Option<Vec<String>>,
        expires_in: Option<i64>,
    ) -> Result<(TokenSummary, Zeroizing<String>), AuthError> {
        self.require_durable_credential(caller)?;
        let user = caller
            .user
            .clone()
            .ok_or_else(|| AuthError::Invalid("an open server has no users to own tokens".into()))?;
        if name.trim().is_empty() || name.len() > 100 {
            return Err(AuthError::Invalid("name: give a token name of 1 to 100 characters".into()));
        }
        let scopes = scopes.unwrap_or_else(|| vec![FULL_SCOPE.to_owned()]);
        if scopes.is_empty() || scopes.iter().any(|s| s != FULL_SCOPE && s != POLICY_SCOPE) {
            return Err(AuthError::Invalid(format!("scopes: each scope is \"{FULL_SCOPE}\" or \"{POLICY_SCOPE}\"")));
        }
        let now = OffsetDateTime::now_utc();
        let expires_at = match expires_in {
            None => None,
            Some(secs) if secs > 0 && secs <= 10 * 365 * 86_400 => Some(now + time::Duration::seconds(secs)),
            Some(_) => return Err(AuthError::Invalid("expires_in: seconds, more than 0 and at most ten years".into())),
        };
        let (secret, digest) = secrets::new_token()?;
        let record = TokenRecord {
            id: secrets::new_id()?,
            user: user.clone(),
            name: name.to_owned(),
            digest,
            scopes,
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        let audit = caller.audit(
            "token.create",
            None,
            serde_json::json!({ "id": record.id, "name": name, "user": user, "scopes": record.scopes }),
        );
        self.store.insert_token(&record, &audit).await.map_err(conflict)?;
        Ok((TokenSummary::from(&record), secret))
    }

    /// The caller's tokens; an admin's listing holds everyone's.
    pub async fn tokens(&self, caller: &Caller) -> Result<Vec<TokenSummary>, AuthError> {
        self.require_account(caller)?;
        let owner = if self.is_admin(caller) { None } else { caller.user.as_deref() };
        Ok(self.store.tokens(owner).await?.iter().filter(|t| t.revoked_at.is_none()).map(TokenSummary::from).collect())
    }

    pub async fn revoke_token(&self, caller: &Caller, id: &str) -> Result<(), AuthError> {
        self.require_account(caller)?;
        let admin = self.is_admin(caller);
        let owned = self.store.tokens(if admin { None } else { caller.user.as_deref() }).await?;
        let token = owned
            .iter()
            .find(|t| t.id == id && t.revoked_at.is_none())
            .ok_or_else(|| AuthError::NotFound(format!("no token {id}")))?;
        let audit = caller.audit("token.revoke", None, serde_json::json!({ "id": id, "user": token.user }));
        if !self.store.revoke_token(id, &audit).await? {
            return Err(AuthError::NotFound(format!("no token {id}")));
        }
        self.reload().await
    }
}

/// A personal access token as its owner and admins see it: never its secret.
#[derive(Debug, Clone)]
pub struct TokenSummary {
    pub id: String,
    pub name: String,
    /// The owner, so that an admin's listing says whose each token is.
    pub user: String,
    pub scopes: Vec<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
}

impl From<&TokenRecord> for TokenSummary {
    fn from(t: &TokenRecord) -> Self {
        TokenSummary {
            id: t.id.clone(),
            name: t.name.clone(),
            user: t.user.clone(),
            scopes: t.scopes.clone(),
            created_at: t.created_at,
            expires_at: t.expires_at,
        }
    }
}
