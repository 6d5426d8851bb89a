//! Access control of the `/v2` routes in notary-server's terms (spec §11): who gets the
//! registry token challenge, who is told a repository does not exist, who lacks scope.
//! The rules themselves are the auth service's (`AuthService::repository_actions`).

use crate::auth::{Action, AuthError, Caller};
use crate::http::AppState;
use crate::http::error::{ApiError, Challenge, V1Error};
use crate::tuf::Gun;

impl AppState {
    fn challenge(&self, kind: &'static str, name: &str, actions: &[Action], error: Option<&'static str>) -> ApiError {
        ApiError::Challenge(Box::new(Challenge {
            realm: format!("{}/auth/token", self.public_url.trim_end_matches('/')),
            service: self.auth.settings.service.clone(),
            kind,
            name: name.to_owned(),
            actions: actions.to_vec(),
            error,
        }))
    }

    /// Allows a `/v2` request on `gun` that needs `needed`, or says why not:
    /// - no credentials or bad ones: 401 with the challenge, for any GUN, existing or not,
    ///   before anything is looked up (catalogue AU-01);
    /// - a signed-in caller who may not even read: the repository does not exist (404),
    ///   so private repositories do not leak;
    /// - otherwise a token short of the scope: 401 `insufficient_scope`.
    pub fn authorize(&self, caller: &Result<Caller, AuthError>, gun: &Gun, needed: &[Action]) -> Result<(), ApiError> {
        let caller = match caller {
            Ok(caller) => caller,
            Err(AuthError::Unauthenticated) => {
                return Err(self.challenge("repository", gun.as_str(), needed, Some("invalid_token")));
            }
            Err(AuthError::TooManyAttempts { retry_after_secs }) => {
                return Err(V1Error::from(AuthError::TooManyAttempts { retry_after_secs: *retry_after_secs }).into());
            }
            Err(error) => return Err(ApiError::Unknown(format!("authentication failed: {error}"))),
        };
        if caller.open {
            return Ok(());
        }
        if caller.credential.is_none() {
            return Err(self.challenge("repository", gun.as_str(), needed, None));
        }
        let granted = self.auth.repository_actions(caller, gun.as_str());
        if needed.iter().all(|a| granted.contains(a)) {
            return Ok(());
        }
        let reads_only = needed == [Action::Pull];
        if caller.user.is_some()
            && reads_only
            && self.auth.model().access(caller.user.as_deref(), gun.as_str()).is_none()
        {
            return Err(ApiError::MetadataNotFound { with_detail: true });
        }
        Err(self.challenge("repository", gun.as_str(), needed, Some("insufficient_scope")))
    }

    /// `registry:catalog:*`: the ping, the global changefeed and the catch-all.
    pub fn authorize_catalog(&self, caller: &Result<Caller, AuthError>, need_admin: bool) -> Result<(), ApiError> {
        let all = [Action::All];
        match caller {
            Ok(caller) if caller.open => Ok(()),
            Ok(caller) if caller.credential.is_none() => Err(self.challenge("registry", "catalog", &all, None)),
            Ok(caller) if !need_admin || self.auth.is_admin(caller) => Ok(()),
            Ok(_) => Err(self.challenge("registry", "catalog", &all, Some("insufficient_scope"))),
            Err(AuthError::TooManyAttempts { retry_after_secs }) => {
                Err(V1Error::from(AuthError::TooManyAttempts { retry_after_secs: *retry_after_secs }).into())
            }
            Err(_) => Err(self.challenge("registry", "catalog", &all, Some("invalid_token"))),
        }
    }
}
