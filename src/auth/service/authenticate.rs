//! Authentication: what a request presented, checked into a `Caller`; the credential caches
//! and the failed-login limit.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use time::OffsetDateTime;

use super::{AuthService, Caller, Credential, FailureCount, Presented};
use crate::auth::jwt::Claims;
use crate::auth::model::AccessModel;
use crate::auth::secrets::{looks_like_token, token_digest};
use crate::auth::{AuthError, secrets};
use crate::store::TokenRecord;
use crate::telemetry::LOGIN_FAILURES;

impl AuthService {
    /// Checks what a request presented. Anonymous is not an error; bad credentials are.
    pub async fn authenticate(&self, presented: Presented, remote: Option<IpAddr>) -> Result<Caller, AuthError> {
        let credential = match &presented {
            Presented::None => "none",
            Presented::Bearer(secret) | Presented::Basic { secret, .. } if looks_like_token(secret) => "token",
            Presented::Bearer(_) => "registry_token",
            Presented::Basic { .. } => "password",
        };
        let result = self.check_presented(presented, remote).await;
        match &result {
            Err(AuthError::Unauthenticated) => {
                metrics::counter!(LOGIN_FAILURES, "credential" => credential, "reason" => "invalid").increment(1)
            }
            Err(AuthError::TooManyAttempts { .. }) => {
                metrics::counter!(LOGIN_FAILURES, "credential" => credential, "reason" => "limited").increment(1)
            }
            _ => {}
        }
        result
    }

    async fn check_presented(&self, presented: Presented, remote: Option<IpAddr>) -> Result<Caller, AuthError> {
        let remote_addr = remote.map(|ip| ip.to_string()).unwrap_or_default();
        let model = self.model();
        let caller = |user: Option<String>, credential| Caller {
            user,
            credential,
            remote_addr: remote_addr.clone(),
            open: model.is_open(),
        };
        match presented {
            Presented::None => Ok(caller(None, None)),
            Presented::Bearer(secret) if looks_like_token(&secret) => {
                let token = self.personal_token(&secret, &model).await?;
                Ok(caller(Some(token.user), Some(Credential::Token { id: token.id, scopes: token.scopes })))
            }
            Presented::Bearer(jwt) => {
                let claims = self.registry_claims(&jwt).ok_or(AuthError::Unauthenticated)?;
                let claims = Claims::clone(&claims);
                if claims.sub.is_empty() {
                    return Ok(caller(None, Some(Credential::Jwt { access: claims.access })));
                }
                model.active_user(&claims.sub).ok_or(AuthError::Unauthenticated)?;
                Ok(caller(Some(claims.sub), Some(Credential::Jwt { access: claims.access })))
            }
            Presented::Basic { user, secret } if looks_like_token(&secret) => {
                let token = self.personal_token(&secret, &model).await?;
                if token.user != user {
                    return Err(AuthError::Unauthenticated);
                }
                Ok(caller(Some(token.user), Some(Credential::Token { id: token.id, scopes: token.scopes })))
            }
            Presented::Basic { user, secret } => {
                self.check_password(&model, &user, &secret, &remote_addr).await?;
                Ok(caller(Some(user), Some(Credential::Password)))
            }
        }
    }

    /// The claims of a valid registry token, verified once per token.
    pub(super) fn registry_claims(&self, jwt: &str) -> Option<Arc<Claims>> {
        let digest: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, jwt.as_bytes()).as_ref().try_into().ok()?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        // The same 60 s leeway as the full check.
        let current = |claims: &Claims| claims.nbf - 60 <= now && now < claims.exp + 60;
        if let Some(claims) = self.verified_jwts.get(&digest) {
            return current(&claims).then_some(claims);
        }
        let claims = Arc::new(self.issuer.verify(jwt)?);
        self.verified_jwts.insert(digest, claims.clone());
        Some(claims)
    }

    pub(super) async fn personal_token(&self, secret: &str, model: &AccessModel) -> Result<TokenRecord, AuthError> {
        let digest = token_digest(secret);
        let cached = self.tokens.lock().ok().and_then(|cache| {
            cache.get(&digest).filter(|(_, at)| at.elapsed() < self.settings.credential_cache).map(|(t, _)| t.clone())
        });
        let token = match cached {
            Some(token) => token,
            None => {
                let token = self.store.token_by_digest(&digest).await?.ok_or(AuthError::Unauthenticated)?;
                if let Ok(mut cache) = self.tokens.lock() {
                    cache.insert(digest.clone(), (token.clone(), Instant::now()));
                }
                token
            }
        };
        let now = OffsetDateTime::now_utc();
        let usable = secrets::same_secret(&token.digest, &digest)
            && token.revoked_at.is_none()
            && token.expires_at.is_none_or(|at| at > now)
            && model.active_user(&token.user).is_some();
        if !usable {
            return Err(AuthError::Unauthenticated);
        }
        Ok(token)
    }

    pub(super) async fn check_password(
        &self,
        model: &AccessModel,
        user: &str,
        password: &str,
        remote_addr: &str,
    ) -> Result<(), AuthError> {
        let cache_key =
            ring::digest::digest(&ring::digest::SHA256, format!("{user}\0{password}").as_bytes()).as_ref().to_vec();
        let cached = self.verified.lock().ok().is_some_and(|cache| {
            cache
                .get(&cache_key)
                .is_some_and(|(name, at)| name == user && at.elapsed() < self.settings.credential_cache)
        });
        if cached && model.active_user(user).is_some() {
            return Ok(());
        }
        let keys = [format!("user:{user}"), format!("addr:{remote_addr}")];
        self.check_failures(&keys)?;
        // An unknown user still pays for a hash, so timing does not tell names apart.
        const DUMMY: &str =
            "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3yHbu8H8cMR6k0Ah0rG2Qw0oVBKZV9Y4NTJ4tqZ8kRI";
        let (hash, active) = match model.active_user(user) {
            Some(entry) => (entry.password_hash.as_str(), true),
            None => (DUMMY, false),
        };
        if secrets::verify_password(hash, password).await && active {
            if let Ok(mut cache) = self.verified.lock() {
                cache.retain(|_, (_, at)| at.elapsed() < self.settings.credential_cache);
                cache.insert(cache_key, (user.to_owned(), Instant::now()));
            }
            if let Ok(mut failures) = self.failures.lock() {
                failures.remove(&keys[0]);
            }
            return Ok(());
        }
        self.record_failure(&keys);
        tracing::warn!(user, remote_addr, "failed login");
        Err(AuthError::Unauthenticated)
    }

    pub(super) fn check_failures(&self, keys: &[String]) -> Result<(), AuthError> {
        // A poisoned lock means a thread panicked while counting: the counts cannot be
        // trusted, and a limiter that cannot count must refuse rather than let every
        // guess through.
        let Ok(failures) = self.failures.lock() else {
            return Err(AuthError::Internal("the failed-login limiter is unusable (a poisoned lock)".into()));
        };
        for key in keys {
            // An address may stand for many people (a proxy, a NAT): by default it gets ten
            // times a user's allowance, so one guesser cannot lock everyone behind it out as
            // fast.
            let limit = if key.starts_with("addr:") {
                self.settings.max_failures_per_address
            } else {
                self.settings.max_failures
            };
            if let Some(f) = failures.get(key)
                && f.count >= limit
                && f.since.elapsed() < self.settings.failure_window
            {
                let left = self.settings.failure_window.saturating_sub(f.since.elapsed());
                return Err(AuthError::TooManyAttempts { retry_after_secs: left.as_secs().max(1) });
            }
        }
        Ok(())
    }

    pub(super) fn record_failure(&self, keys: &[String]) {
        let Ok(mut failures) = self.failures.lock() else { return };
        if failures.len() > 100_000 {
            failures.retain(|_, f| f.since.elapsed() < self.settings.failure_window);
        }
        for key in keys {
            let entry = failures.entry(key.clone()).or_insert(FailureCount { count: 0, since: Instant::now() });
            if entry.since.elapsed() >= self.settings.failure_window {
                *entry = FailureCount { count: 0, since: Instant::now() };
            }
            entry.count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::keystore::Keystore;
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;
    use crate::tuf::crypto::KeyAlgorithm;

    async fn service() -> AuthService {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
        let keystore = Keystore::open(store.clone(), "pass", None, KeyAlgorithm::Ecdsa).await.unwrap();
        AuthService::new(store, &keystore, Config::default().auth_settings()).await.unwrap()
    }

    /// A limiter whose state is lost refuses password logins instead of allowing all.
    #[tokio::test]
    async fn a_poisoned_failed_login_limiter_fails_closed() {
        let auth = Arc::new(service().await);
        auth.bootstrap_admin("root", "a-long-password").await.unwrap();
        let basic =
            || Presented::Basic { user: "root".into(), secret: zeroize::Zeroizing::new("wrong-password".into()) };
        assert!(matches!(auth.authenticate(basic(), None).await, Err(AuthError::Unauthenticated)));
        let poisoner = auth.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.failures.lock().unwrap();
            panic!("poison the limiter");
        })
        .join();
        assert!(auth.failures.is_poisoned());
        let refused = auth.authenticate(basic(), None).await;
        assert!(matches!(refused, Err(AuthError::Internal(_))), "{refused:?}");
        let right = Presented::Basic { user: "root".into(), secret: zeroize::Zeroizing::new("a-long-password".into()) };
        assert!(auth.authenticate(right, None).await.is_err(), "not even the right password passes a blind limiter");
    }

    #[tokio::test]
    async fn verified_registry_tokens_are_cached_but_still_expire() {
        let auth = service().await;
        let anonymous = Caller { user: None, credential: None, remote_addr: String::new(), open: true };
        let issued = auth.issue_registry_token(&anonymous, &["repository:a/b:pull".into()]).unwrap();
        let first = auth.registry_claims(&issued.token).unwrap();
        let again = auth.registry_claims(&issued.token).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the second use comes from the cache");
        assert!(auth.registry_claims(&format!("{}x", issued.token)).is_none());

        // A cached token past its expiry (and the leeway) is refused without a new check.
        let mut expired = Claims::clone(&first);
        expired.exp = OffsetDateTime::now_utc().unix_timestamp() - 61;
        let stale = "a token that verified a while ago";
        let digest: [u8; 32] =
            ring::digest::digest(&ring::digest::SHA256, stale.as_bytes()).as_ref().try_into().unwrap();
        auth.verified_jwts.insert(digest, Arc::new(expired));
        assert!(auth.registry_claims(stale).is_none());
    }
}
