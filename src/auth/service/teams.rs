//! Teams and their members.

use time::OffsetDateTime;

use super::{AuthService, Caller, conflict};
use crate::auth::{AuthError, valid_name};
use crate::store::TeamRecord;

impl AuthService {
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
}
