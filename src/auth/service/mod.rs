//! `AuthService`: credentials in, callers out; and every change to accounts, with its
//! audit record. One file per concern; this one holds the service's state and the types
//! they share.

mod audit;
mod authenticate;
mod authorize;
mod grants;
mod keys;
mod registry_token;
mod repositories;
mod teams;
mod tokens;
mod users;

pub use grants::GrantRequest;
pub use registry_token::IssuedToken;
pub use repositories::ReadableRepository;
pub use tokens::TokenSummary;
pub use users::UserSummary;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::AuthError;
use super::certs::UserCa;
use super::jwt::{Claims, ResourceActions, TokenIssuer};
use super::model::AccessModel;
use crate::keystore::{Keystore, TOKEN_SIGNING_KEY};
use crate::store::{AuditRecord, Store, StoreError, TokenRecord};

/// The token scope of a personal access token limited to policy decisions.
pub const POLICY_SCOPE: &str = "policy";
/// The token scope of a personal access token that acts with all of its user's rights.
pub const FULL_SCOPE: &str = "all";

/// The account service's settings; made from the `Config` (`Config::auth_settings`),
/// where their defaults are.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The `service` of the token flow, and the JWT audience.
    pub service: String,
    /// The JWT issuer.
    pub issuer: String,
    /// Lifetime of tokens from `/auth/token`.
    pub token_lifetime: Duration,
    /// Visibility of new repositories.
    pub default_public: bool,
    /// How long a verified password stays verified.
    pub credential_cache: Duration,
    /// Validity of certificates in client bundles.
    pub bundle_validity: time::Duration,
    /// Failed logins allowed per user within `failure_window`.
    pub max_failures: u32,
    /// Failed logins allowed per client address within `failure_window`.
    pub max_failures_per_address: u32,
    pub failure_window: Duration,
    /// Capacity of the cache of verified registry tokens.
    pub jwt_cache_entries: usize,
}

/// How a caller proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    Password,
    Token {
        id: String,
        scopes: Vec<String>,
    },
    /// A registry token: its access claim bounds what the caller may do.
    Jwt {
        access: Vec<ResourceActions>,
    },
}

/// Who is asking.
#[derive(Debug, Clone)]
pub struct Caller {
    /// None: anonymous.
    pub user: Option<String>,
    pub credential: Option<Credential>,
    pub remote_addr: String,
    /// The server has no account yet: everything is allowed.
    pub open: bool,
}

impl Caller {
    pub fn actor(&self) -> &str {
        self.user.as_deref().unwrap_or("anonymous")
    }

    /// A caller whose credential is limited to policy decisions.
    pub fn policy_only(&self) -> bool {
        matches!(&self.credential, Some(Credential::Token { scopes, .. }) if !scopes.iter().any(|s| s == FULL_SCOPE))
    }

    pub fn audit(&self, action: &str, repository: Option<&str>, detail: serde_json::Value) -> AuditRecord {
        AuditRecord {
            at: OffsetDateTime::now_utc(),
            actor: self.actor().to_owned(),
            action: action.to_owned(),
            repository: repository.map(str::to_owned),
            detail,
            remote_addr: self.remote_addr.clone(),
        }
    }
}

/// What a request presented, before it is checked.
pub enum Presented {
    None,
    Basic { user: String, secret: Zeroizing<String> },
    Bearer(Zeroizing<String>),
}

impl Presented {
    /// Reads an `Authorization` header value. Anything unreadable is an empty Bearer,
    /// which fails as a bad credential rather than passing as anonymous.
    pub fn from_header(value: Option<&str>) -> Presented {
        let Some(value) = value else { return Presented::None };
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return Presented::Bearer(Zeroizing::new(rest.to_owned()));
        }
        if scheme.eq_ignore_ascii_case("basic")
            && let Ok(decoded) = STANDARD.decode(rest)
            && let Ok(text) = String::from_utf8(decoded)
            && let Some((user, secret)) = text.split_once(':')
        {
            return Presented::Basic { user: user.to_owned(), secret: Zeroizing::new(secret.to_owned()) };
        }
        Presented::Bearer(Zeroizing::new(String::new()))
    }
}

struct FailureCount {
    count: u32,
    since: Instant,
}

pub struct AuthService {
    store: Arc<dyn Store>,
    model: RwLock<Arc<AccessModel>>,
    issuer: TokenIssuer,
    ca: UserCa,
    pub settings: AuthSettings,
    /// SHA-256 of (user, password) of recently verified passwords, so repeated Basic
    /// calls (deploy gates, docker) pay Argon2id once a minute, not once a request.
    verified: Mutex<HashMap<Vec<u8>, (String, Instant)>>,
    /// Recently used personal access tokens by digest.
    tokens: Mutex<HashMap<Vec<u8>, (TokenRecord, Instant)>>,
    /// Registry tokens already verified, by SHA-256 of the token: a client sends the
    /// same token with every request of a command, and an ECDSA check costs more than
    /// the rest of a metadata read. The claims are immutable, so only time is rechecked.
    verified_jwts: quick_cache::sync::Cache<[u8; 32], Arc<Claims>>,
    failures: Mutex<HashMap<String, FailureCount>>,
    /// Reloads take turns, so a slow reload cannot install an older snapshot over the one
    /// a later change installed (a revoked grant coming back).
    reload_lock: tokio::sync::Mutex<()>,
    /// Counts changes to who is who: accounts, teams, grants and users' keys. Cached
    /// policy decisions carry the value they were made at.
    version: std::sync::atomic::AtomicU64,
}

impl AuthService {
    pub async fn new(
        store: Arc<dyn Store>,
        keystore: &Keystore,
        settings: AuthSettings,
    ) -> Result<AuthService, AuthError> {
        let key = keystore.own_key(TOKEN_SIGNING_KEY).await?;
        let issuer = TokenIssuer::new(key, &settings.issuer, &settings.service)?;
        let ca = UserCa::load(keystore, store.as_ref()).await?;
        let model = AccessModel::new(store.account_snapshot().await?, settings.default_public);
        let jwt_cache_entries = settings.jwt_cache_entries;
        Ok(AuthService {
            store,
            model: RwLock::new(Arc::new(model)),
            issuer,
            ca,
            settings,
            verified: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            verified_jwts: quick_cache::sync::Cache::new(jwt_cache_entries),
            failures: Mutex::new(HashMap::new()),
            reload_lock: tokio::sync::Mutex::new(()),
            version: std::sync::atomic::AtomicU64::new(1),
        })
    }

    pub fn model(&self) -> Arc<AccessModel> {
        self.model.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// Reloads the access model after a change, and forgets cached credentials, which
    /// may have been disabled or changed.
    pub async fn reload(&self) -> Result<(), AuthError> {
        let _turn = self.reload_lock.lock().await;
        let model = AccessModel::new(self.store.account_snapshot().await?, self.settings.default_public);
        if let Ok(mut slot) = self.model.write() {
            *slot = Arc::new(model);
        }
        self.bump_version();
        if let Ok(mut verified) = self.verified.lock() {
            verified.clear();
        }
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.clear();
        }
        Ok(())
    }

    /// The cache of verified registry tokens, for `/metrics`.
    pub fn cache_stats(&self) -> crate::telemetry::CacheStats {
        crate::telemetry::CacheStats::of(&self.verified_jwts)
    }

    pub fn is_open(&self) -> bool {
        self.model().is_open()
    }

    /// The current value of the change counter (see the field).
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn bump_version(&self) {
        self.version.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn conflict(e: StoreError) -> AuthError {
    match e {
        StoreError::AlreadyExists(what) => AuthError::Conflict(format!("{what} already exists")),
        StoreError::Missing(what) => AuthError::NotFound(format!("{what} does not exist")),
        other => other.into(),
    }
}
