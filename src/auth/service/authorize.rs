//! Authorisation: what a caller may do, from the live access model and the token's claims.

use super::{AuthService, Caller, Credential};
use crate::auth::{Access, Action, AuthError};

impl AuthService {
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
    pub(super) fn require_durable_credential(&self, caller: &Caller) -> Result<(), AuthError> {
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

    /// A signed-in server admin whose credential is not limited to policy decisions (the
    /// `/v1/admin` calls, user management, the audit log).
    pub fn require_admin(&self, caller: &Caller) -> Result<(), AuthError> {
        self.require_account(caller)?;
        if self.is_admin(caller) { Ok(()) } else { Err(AuthError::Denied("this needs a server admin".into())) }
    }

    /// The caller themselves, or an admin.
    pub(super) fn require_self_or_admin(&self, caller: &Caller, user: &str) -> Result<(), AuthError> {
        self.require_account(caller)?;
        if caller.user.as_deref() == Some(user) || self.is_admin(caller) {
            Ok(())
        } else {
            Err(AuthError::Denied(format!("only {user} or an admin may do this")))
        }
    }

    /// May `caller` ask for decisions about images of `gun` (`POST /v1/policy/check`)? A
    /// policy-scoped token (a deploy gate), a server admin, or anyone who may pull the
    /// repository. A caller who may not read it is not told whether it exists: as on its
    /// own routes, it is not found (DESIGN §5).
    pub fn authorize_policy_check(&self, caller: &Caller, gun: &str) -> Result<(), AuthError> {
        self.require_policy_caller(caller)?;
        if caller.open || caller.policy_only() || self.is_admin(caller) {
            return Ok(());
        }
        if self.repository_actions(caller, gun).contains(&Action::Pull) {
            return Ok(());
        }
        if self.model().access(caller.user.as_deref(), gun).is_none() {
            return Err(AuthError::NotFound(format!("no repository {gun}")));
        }
        Err(AuthError::Denied(format!("checking images of {gun} needs pull on it, or a token with the policy scope")))
    }

    /// A deploy gate's calls that span repositories (the decision log) and the admission
    /// webhooks: policy-scoped tokens, admins, or anyone on an open server.
    pub fn authorize_gate(&self, caller: &Caller) -> Result<(), AuthError> {
        self.require_policy_caller(caller)?;
        if caller.open || caller.policy_only() || self.is_admin(caller) {
            return Ok(());
        }
        Err(AuthError::Denied("this needs a token with the policy scope, or a server admin".into()))
    }

    /// The admission webhooks: as [`Self::authorize_gate`], except that with
    /// `open_admission` a caller presenting no credentials is let through (managed API
    /// servers that cannot send a token; the endpoint is then protected by the network).
    pub fn authorize_admission(&self, caller: &Caller, open_admission: bool) -> Result<(), AuthError> {
        if open_admission && caller.credential.is_none() {
            return Ok(());
        }
        self.authorize_gate(caller)
    }
}
