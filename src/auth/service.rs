//! `AuthService`: credentials in, callers out; and every change to accounts, with its
//! audit record.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::certs::{Bundle, UserCa, UserCertificate, check_user_certificate};
use super::jwt::{Claims, ResourceActions, TokenIssuer};
use super::model::{AccessModel, RepositoryPattern, Subject};
use super::secrets::{self, looks_like_token, token_digest};
use super::{Access, Action, AuthError, valid_name};
use crate::keystore::{Keystore, TOKEN_SIGNING_KEY};
use crate::store::{
    AuditRecord, GrantRecord, RepositorySettings, Store, StoreError, TeamRecord, TokenRecord, UserChange,
    UserKeyRecord, UserRecord,
};

/// The token scope of a personal access token limited to policy decisions.
pub const POLICY_SCOPE: &str = "policy";
/// The token scope of a personal access token that acts with all of its user's rights.
pub const FULL_SCOPE: &str = "all";

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
    /// Failed logins allowed per user within `failure_window` (ten times as many per
    /// address).
    pub max_failures: u32,
    pub failure_window: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            service: "notarius".into(),
            issuer: "notarius".into(),
            token_lifetime: Duration::from_secs(300),
            default_public: true,
            credential_cache: Duration::from_secs(60),
            bundle_validity: time::Duration::days(365),
            max_failures: 10,
            failure_window: Duration::from_secs(300),
        }
    }
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
        Ok(AuthService {
            store,
            model: RwLock::new(Arc::new(model)),
            issuer,
            ca,
            settings,
            verified: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            verified_jwts: quick_cache::sync::Cache::new(10_000),
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
    async fn reload(&self) -> Result<(), AuthError> {
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

    /// The enabled user who holds the (unrevoked) key with this public key, and their
    /// teams, read now: membership and key revocation count at decision time.
    pub async fn key_owner(
        &self,
        material: &crate::tuf::keys::KeyMaterial,
    ) -> Result<Option<(String, Vec<String>)>, AuthError> {
        let digest = super::certs::public_key_digest(material);
        let Some(key) = self.store.user_key_by_public(&digest).await? else {
            return Ok(None);
        };
        let model = self.model();
        Ok(model.active_user(&key.user).map(|u| (u.name.clone(), u.teams.clone())))
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca.cert_pem
    }

    // ---- Authentication ------------------------------------------------------------

    /// Checks what a request presented. Anonymous is not an error; bad credentials are.
    pub async fn authenticate(&self, presented: Presented, remote: Option<IpAddr>) -> Result<Caller, AuthError> {
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
    fn registry_claims(&self, jwt: &str) -> Option<Arc<Claims>> {
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

    async fn personal_token(&self, secret: &str, model: &AccessModel) -> Result<TokenRecord, AuthError> {
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

    async fn check_password(
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

    fn check_failures(&self, keys: &[String]) -> Result<(), AuthError> {
        let Ok(failures) = self.failures.lock() else { return Ok(()) };
        for key in keys {
            // An address may stand for many people (a proxy, a NAT): it gets ten times a
            // user's allowance, so one guesser cannot lock everyone behind it out as fast.
            let limit =
                if key.starts_with("addr:") { self.settings.max_failures * 10 } else { self.settings.max_failures };
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

    fn record_failure(&self, keys: &[String]) {
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

    // ---- Authorisation ---------------------------------------------------------------

    /// The actions `caller` may take on repository `gun` right now: the live rules, and
    /// for a registry token also no more than the token grants.
    pub fn repository_actions(&self, caller: &Caller, gun: &str) -> Vec<Action> {
        let model = self.model();
        if model.is_open() {
            return Access::Admin.actions().to_vec();
        }
        if caller.policy_only() {
            return Vec::new();
        }
        let Some(access) = model.access(caller.user.as_deref(), gun) else {
            return Vec::new();
        };
        access
            .actions()
            .iter()
            .copied()
            .filter(|action| match &caller.credential {
                Some(Credential::Jwt { access }) => access.iter().any(|r| r.allows("repository", gun, *action)),
                _ => true,
            })
            .collect()
    }

    /// Server-wide administration (`registry:catalog:*`, the `/v1/admin` calls).
    pub fn is_admin(&self, caller: &Caller) -> bool {
        let model = self.model();
        if model.is_open() {
            return true;
        }
        let admin = caller.user.as_deref().and_then(|u| model.active_user(u)).is_some_and(|u| u.admin);
        admin
            && !caller.policy_only()
            && match &caller.credential {
                Some(Credential::Jwt { access }) => access.iter().any(|r| r.allows("registry", "catalog", Action::All)),
                _ => true,
            }
    }

    /// A `/v1` caller: a signed-in user whose credential is not limited to policy
    /// decisions. On an open server, anyone.
    pub fn require_account(&self, caller: &Caller) -> Result<(), AuthError> {
        if self.is_open() {
            return Ok(());
        }
        match (&caller.user, &caller.credential) {
            (None, _) | (_, None) => Err(AuthError::Unauthenticated),
            _ if caller.policy_only() => Err(AuthError::Denied("this token is limited to the policy scope".into())),
            _ => Ok(()),
        }
    }

    /// Minting a long-lived credential (a personal access token, a new password) needs a
    /// long-lived one: a five-minute registry token that leaked must not become a
    /// permanent one.
    fn require_durable_credential(&self, caller: &Caller) -> Result<(), AuthError> {
        self.require_account(caller)?;
        if matches!(caller.credential, Some(Credential::Jwt { .. })) {
            return Err(AuthError::Denied(
                "use a password or a personal access token for this, not a registry token".into(),
            ));
        }
        Ok(())
    }

    /// A caller allowed to ask for policy decisions: any signed-in credential, a
    /// policy-scoped token included.
    pub fn require_policy_caller(&self, caller: &Caller) -> Result<(), AuthError> {
        if self.is_open() || caller.user.is_some() {
            return Ok(());
        }
        Err(AuthError::Unauthenticated)
    }

    fn require_admin(&self, caller: &Caller) -> Result<(), AuthError> {
        self.require_account(caller)?;
        if self.is_admin(caller) { Ok(()) } else { Err(AuthError::Denied("this needs a server admin".into())) }
    }

    /// The caller themselves, or an admin.
    fn require_self_or_admin(&self, caller: &Caller, user: &str) -> Result<(), AuthError> {
        self.require_account(caller)?;
        if caller.user.as_deref() == Some(user) || self.is_admin(caller) {
            Ok(())
        } else {
            Err(AuthError::Denied(format!("only {user} or an admin may do this")))
        }
    }

    // ---- The token endpoint ----------------------------------------------------------

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

    // ---- Users -------------------------------------------------------------------------

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
    ) -> Result<UserView, AuthError> {
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
        Ok(UserView { name: name.into(), admin, disabled: false })
    }

    pub fn users(&self, caller: &Caller) -> Result<Vec<UserView>, AuthError> {
        self.require_admin(caller)?;
        let model = self.model();
        let mut users: Vec<UserView> =
            model.users().map(|u| UserView { name: u.name.clone(), admin: u.admin, disabled: u.disabled }).collect();
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

    // ---- Personal access tokens ---------------------------------------------------

    pub async fn create_token(
        &self,
        caller: &Caller,
        name: &str,
        scopes: Option<Vec<String>>,
        expires_in: Option<i64>,
    ) -> Result<(TokenView, Zeroizing<String>), AuthError> {
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
        Ok((TokenView::from(&record), secret))
    }

    /// The caller's tokens; an admin's listing holds everyone's.
    pub async fn tokens(&self, caller: &Caller) -> Result<Vec<TokenView>, AuthError> {
        self.require_account(caller)?;
        let owner = if self.is_admin(caller) { None } else { caller.user.as_deref() };
        Ok(self.store.tokens(owner).await?.iter().filter(|t| t.revoked_at.is_none()).map(TokenView::from).collect())
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

    // ---- Teams -----------------------------------------------------------------------

    pub async fn create_team(&self, caller: &Caller, name: &str) -> Result<TeamRecord, AuthError> {
        self.require_admin(caller)?;
        if !valid_name(name) {
            return Err(AuthError::Invalid(format!("name: {name:?} is not a valid team name")));
        }
        let audit = caller.audit("team.create", None, serde_json::json!({ "team": name }));
        self.store.insert_team(name, OffsetDateTime::now_utc(), &audit).await.map_err(conflict)?;
        self.reload().await?;
        Ok(TeamRecord { name: name.into(), members: Vec::new() })
    }

    pub async fn delete_team(&self, caller: &Caller, name: &str) -> Result<(), AuthError> {
        self.require_admin(caller)?;
        let audit = caller.audit("team.delete", None, serde_json::json!({ "team": name }));
        if !self.store.delete_team(name, &audit).await? {
            return Err(AuthError::NotFound(format!("no team {name}")));
        }
        self.reload().await
    }

    pub async fn set_membership(&self, caller: &Caller, team: &str, user: &str, member: bool) -> Result<(), AuthError> {
        self.require_admin(caller)?;
        // Lasting credentials and rights need a durable credential too, not a registry
        // token: see `require_durable_credential` (tests/attack_auth.rs, au05).
        if member {
            self.require_durable_credential(caller)?;
        }
        let model = self.model();
        model.team_members(team).ok_or_else(|| AuthError::NotFound(format!("no team {team}")))?;
        model.user(user).ok_or_else(|| AuthError::NotFound(format!("no user {user}")))?;
        let action = if member { "team.member.add" } else { "team.member.remove" };
        let audit = caller.audit(action, None, serde_json::json!({ "team": team, "user": user }));
        let changed = self.store.set_membership(team, user, member, OffsetDateTime::now_utc(), &audit).await?;
        if !changed && !member {
            return Err(AuthError::NotFound(format!("{user} is not a member of {team}")));
        }
        self.reload().await
    }

    pub fn teams(&self, caller: &Caller) -> Result<Vec<TeamRecord>, AuthError> {
        self.require_account(caller)?;
        let model = self.model();
        let mut teams: Vec<TeamRecord> =
            model.teams().map(|(name, members)| TeamRecord { name: name.clone(), members: members.clone() }).collect();
        teams.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(teams)
    }

    // ---- Grants and visibility -----------------------------------------------------

    /// Checks a grant request and the caller's right to make it: admin on everything
    /// the grant covers (DESIGN §5: write does not let a user share a repository).
    fn checked_grant(&self, caller: &Caller, grant: &GrantRequest) -> Result<GrantRecord, AuthError> {
        // Not `require_account`: a grant outlives a registry token, and the token's scope
        // is not checked here (tests/attack_auth.rs, au05).
        self.require_durable_credential(caller)?;
        let pattern = RepositoryPattern::parse(&grant.repository)
            .ok_or_else(|| AuthError::Invalid("repository: give a GUN or prefix/*".into()))?;
        let access = Access::parse(&grant.access)
            .ok_or_else(|| AuthError::Invalid("access: one of read, write, admin".into()))?;
        let model = self.model();
        let (kind, subject) = match (&grant.user, &grant.team) {
            (Some(user), None) => {
                model.user(user).ok_or_else(|| AuthError::NotFound(format!("no user {user}")))?;
                ("user", user.clone())
            }
            (None, Some(team)) => {
                model.team_members(team).ok_or_else(|| AuthError::NotFound(format!("no team {team}")))?;
                ("team", team.clone())
            }
            _ => return Err(AuthError::Invalid("give exactly one of user and team".into())),
        };
        if !self.is_admin(caller) {
            let user = caller.user.as_deref().unwrap_or_default();
            if model.access_to_pattern(user, &pattern) != Some(Access::Admin) {
                return Err(self.hidden_or_denied(caller, &pattern, "granting access needs admin on the repository"));
            }
        }
        Ok(GrantRecord {
            repository: pattern.to_string(),
            subject_kind: kind.into(),
            subject,
            access: access.as_str().into(),
        })
    }

    /// For a caller without read on an exact private repository, the repository does
    /// not exist; otherwise they are denied.
    fn hidden_or_denied(&self, caller: &Caller, pattern: &RepositoryPattern, reason: &str) -> AuthError {
        if let RepositoryPattern::Exact(gun) = pattern
            && self.model().access(caller.user.as_deref(), gun).is_none()
        {
            return AuthError::NotFound(format!("no repository {gun}"));
        }
        AuthError::Denied(reason.into())
    }

    pub async fn put_grant(&self, caller: &Caller, request: &GrantRequest) -> Result<GrantRecord, AuthError> {
        let grant = self.checked_grant(caller, request)?;
        let audit = caller.audit(
            "grant.add",
            Some(&grant.repository),
            serde_json::json!({ grant.subject_kind.clone(): grant.subject, "access": grant.access }),
        );
        self.store.put_grant(&grant, OffsetDateTime::now_utc(), &audit).await?;
        self.reload().await?;
        Ok(grant)
    }

    pub async fn delete_grant(&self, caller: &Caller, request: &GrantRequest) -> Result<(), AuthError> {
        let grant = self.checked_grant(caller, request)?;
        let audit = caller.audit(
            "grant.remove",
            Some(&grant.repository),
            serde_json::json!({ grant.subject_kind.clone(): grant.subject, "access": grant.access }),
        );
        if !self.store.delete_grant(&grant, &audit).await? {
            return Err(AuthError::NotFound("no such grant".into()));
        }
        self.reload().await
    }

    /// Every grant for an admin; for others, the grants on repositories they administer
    /// and the grants to themselves and their teams.
    pub fn grants(&self, caller: &Caller) -> Result<Vec<GrantRecord>, AuthError> {
        self.require_account(caller)?;
        let model = self.model();
        let admin = self.is_admin(caller);
        let user = caller.user.as_deref().unwrap_or_default();
        let teams = model.user(user).map(|u| u.teams.clone()).unwrap_or_default();
        Ok(model
            .grants()
            .iter()
            .filter(|g| {
                admin
                    || match &g.subject {
                        Subject::User(name) => name == user,
                        Subject::Team(team) => teams.contains(team),
                    }
                    || model.access_to_pattern(user, &g.pattern) == Some(Access::Admin)
            })
            .map(|g| {
                let (kind, subject) = match &g.subject {
                    Subject::User(name) => ("user", name.clone()),
                    Subject::Team(team) => ("team", team.clone()),
                };
                GrantRecord {
                    repository: g.pattern.to_string(),
                    subject_kind: kind.into(),
                    subject,
                    access: g.access.as_str().into(),
                }
            })
            .collect())
    }

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

    // ---- Users' keys -----------------------------------------------------------------

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

    async fn record_user_key(
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

    // ---- Admin and audit -------------------------------------------------------------

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

fn check_user_name(name: &str) -> Result<(), AuthError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "name: {name:?} is not a valid user name (lowercase letters, digits, '.', '_', '-'; at most 64)"
        )))
    }
}

fn conflict(e: StoreError) -> AuthError {
    match e {
        StoreError::AlreadyExists(what) => AuthError::Conflict(format!("{what} already exists")),
        StoreError::Missing(what) => AuthError::NotFound(format!("{what} does not exist")),
        other => other.into(),
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct UserView {
    pub name: String,
    pub admin: bool,
    pub disabled: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// The owner, so that an admin's listing says whose each token is.
    pub user: String,
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

impl From<&TokenRecord> for TokenView {
    fn from(t: &TokenRecord) -> Self {
        TokenView {
            id: t.id.clone(),
            name: t.name.clone(),
            user: t.user.clone(),
            scopes: t.scopes.clone(),
            created_at: t.created_at,
            expires_at: t.expires_at,
        }
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct GrantRequest {
    pub repository: String,
    pub user: Option<String>,
    pub team: Option<String>,
    pub access: String,
}

pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
    pub issued_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use crate::tuf::crypto::KeyAlgorithm;

    async fn service() -> AuthService {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
        let keystore = Keystore::open(store.clone(), "pass", None, KeyAlgorithm::Ecdsa).await.unwrap();
        AuthService::new(store, &keystore, AuthSettings::default()).await.unwrap()
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
