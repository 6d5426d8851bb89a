//! The registry token endpoint (`GET /auth/token`): a JWT for the granted part of each scope.

use time::OffsetDateTime;

use super::{AuthService, Caller};
use crate::auth::jwt::{Claims, ResourceActions};
use crate::auth::{Action, AuthError, secrets};

impl AuthService {
    /// `GET /auth/token`: a registry token for the granted part of each requested scope.
    pub fn issue_registry_token(&self, caller: &Caller, scopes: &[String]) -> Result<IssuedToken, AuthError> {
        if caller.policy_only() {
            return Err(AuthError::Denied("this token is limited to the policy scope".into()));
        }
        let mut access = Vec::new();
        for scope in scopes.iter().flat_map(|s| s.split(' ')).filter(|s| !s.is_empty()) {
            let Some((kind, rest)) = scope.split_once(':') else { continue };
            let Some((name, actions)) = rest.rsplit_once(':') else { continue };
            let requested: Vec<Action> = actions.split(',').filter_map(Action::parse).collect();
            let allowed: Vec<Action> = match kind {
                "repository" => match crate::tuf::Gun::parse(name) {
                    Ok(gun) if gun.as_str() == name => self.repository_actions(caller, name),
                    _ => Vec::new(),
                },
                "registry" if name == "catalog" && self.is_admin(caller) => vec![Action::All],
                _ => Vec::new(),
            };
            let granted: Vec<String> =
                requested.iter().filter(|a| allowed.contains(a)).map(|a| a.as_str().to_owned()).collect();
            access.push(ResourceActions { kind: kind.to_owned(), name: name.to_owned(), actions: granted });
        }
        let now = OffsetDateTime::now_utc();
        let lifetime = self.settings.token_lifetime.as_secs() as i64;
        let claims = Claims {
            iss: self.issuer.issuer.clone(),
            sub: caller.user.clone().unwrap_or_default(),
            aud: self.issuer.service.clone(),
            exp: now.unix_timestamp() + lifetime,
            nbf: now.unix_timestamp() - 5,
            iat: now.unix_timestamp(),
            jti: secrets::new_id()?,
            access,
        };
        Ok(IssuedToken { token: self.issuer.sign(&claims)?, expires_in: lifetime, issued_at: now })
    }
}

pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
    pub issued_at: OffsetDateTime,
}
