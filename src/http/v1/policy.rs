//! `/v1/policy/check`, `/v1/policies` and `/v1/decisions`: signing-policy decisions for
//! deploy gates (DESIGN §6), the rules in force, and the decision log.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::timestamp;
use crate::http::AppState;
use crate::http::error::V1Error;
use crate::http::extract::{V1Caller, V1Json};
use crate::http::openapi::V1Errors;
use crate::policy::files::{PolicySet, Rule};
use crate::policy::reference::ImageReference;
use crate::policy::{Decision, Operation};
use crate::store::DecisionRecord;

/// The fields of a check. Anything else in the body (a caller's own policy, trust
/// anchors, clock) is refused, never used: the server's policies and clock decide.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// An image reference as docker reads it: `nginx`, `registry.example.com/team/app:v1`,
    /// `...@sha256:<hex>`.
    image: String,
    operation: Operation,
}

/// Decides whether `image` may be pulled, run or deployed, and logs the decision. Needs
/// a policy-scoped token, an admin, or pull on the repository.
#[utoipa::path(post, path = "/v1/policy/check", operation_id = "check_image", tag = "policy", request_body = CheckRequest,
    responses((status = 200, description = "OK", body = Decision), V1Errors))]
pub async fn check(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    V1Json(request): V1Json<CheckRequest>,
) -> Result<Json<Decision>, V1Error> {
    let reference = ImageReference::parse(&request.image).map_err(|e| V1Error::invalid(format!("image: {e}")))?;
    app.auth.authorize_policy_check(&caller, &reference.gun)?;
    let checked = app.policy.check(&request.image, request.operation, caller.actor(), false).await?;
    Ok(Json(checked.decision))
}

#[derive(Serialize, ToSchema)]
pub struct RuleView {
    name: String,
    /// The file it came from.
    file: String,
    repositories: Vec<String>,
    operations: Vec<Operation>,
    signed_by_teams: Vec<String>,
    min_signers: usize,
    /// `enforce` or `warn`.
    mode: String,
}

impl From<&Rule> for RuleView {
    fn from(rule: &Rule) -> Self {
        RuleView {
            name: rule.name.clone(),
            file: rule.file.clone(),
            repositories: rule.repositories.iter().map(|p| p.as_str().to_owned()).collect(),
            operations: rule.operations.clone(),
            signed_by_teams: rule.signed_by_teams.clone(),
            min_signers: rule.min_signers,
            mode: rule.mode.as_str().to_owned(),
        }
    }
}

/// The policy files in force.
#[derive(Serialize, ToSchema)]
pub struct PoliciesView {
    /// 1 for the policies loaded at start, one more at each reload that changed them.
    version: u64,
    /// `sha256:<hex>` over the files' names and bytes.
    digest: String,
    content_trust: bool,
    /// The file that set `content_trust`, if one did.
    content_trust_file: Option<String>,
    /// `allow` or `deny`: for images no rule covers.
    default: String,
    default_file: Option<String>,
    files: Vec<String>,
    rules: Vec<RuleView>,
}

impl From<&PolicySet> for PoliciesView {
    fn from(set: &PolicySet) -> Self {
        PoliciesView {
            version: set.version,
            digest: set.digest.clone(),
            content_trust: set.content_trust,
            content_trust_file: set.content_trust_file.clone(),
            default: set.default.as_str().to_owned(),
            default_file: set.default_file.clone(),
            files: set.files.clone(),
            rules: set.rules.iter().map(RuleView::from).collect(),
        }
    }
}

/// The rules in force, which file each came from, and the policy version.
#[utoipa::path(get, path = "/v1/policies", operation_id = "list_policies", tag = "policy", responses((status = 200, description = "OK", body = PoliciesView), V1Errors))]
pub async fn policies(State(app): State<AppState>, V1Caller(caller): V1Caller) -> Result<Json<PoliciesView>, V1Error> {
    app.auth.require_policy_caller(&caller)?;
    Ok(Json(PoliciesView::from(app.policy.policies().current().as_ref())))
}

#[derive(Deserialize, IntoParams)]
pub struct DecisionsQuery {
    /// Only decisions about this image (normalised as checks log it: `nginx` finds
    /// `docker.io/library/nginx:latest`).
    image: Option<String>,
    /// Most records, newest first (1 to 10000; default 100).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DecisionView {
    #[serde(serialize_with = "timestamp::serialize")]
    #[schema(value_type = String, format = DateTime)]
    at: OffsetDateTime,
    requester: String,
    image: String,
    operation: String,
    digest: Option<String>,
    allowed: bool,
    rule: Option<String>,
    reasons: Vec<String>,
    /// An admission dry run.
    dry_run: bool,
    /// Role -> version of the trust data the decision rested on.
    #[schema(value_type = Object)]
    trust_versions: serde_json::Value,
}

impl From<DecisionRecord> for DecisionView {
    fn from(r: DecisionRecord) -> Self {
        DecisionView {
            at: r.at,
            requester: r.requester,
            image: r.image,
            operation: r.operation,
            digest: r.digest,
            allowed: r.allowed,
            rule: r.rule,
            reasons: r.reasons,
            dry_run: r.dry_run,
            trust_versions: r.trust_versions,
        }
    }
}

/// The decision log, newest first (policy-scoped tokens and admins).
#[utoipa::path(get, path = "/v1/decisions", operation_id = "list_decisions", tag = "policy", params(DecisionsQuery),
    responses((status = 200, description = "the list, in order", body = Vec<DecisionView>), V1Errors))]
pub async fn decisions(
    State(app): State<AppState>,
    V1Caller(caller): V1Caller,
    query: Result<Query<DecisionsQuery>, QueryRejection>,
) -> Result<Json<Vec<DecisionView>>, V1Error> {
    let Query(query) = query?;
    app.auth.authorize_gate(&caller)?;
    let records = app.policy.decisions(query.image.as_deref(), query.limit.unwrap_or(100)).await?;
    Ok(Json(records.into_iter().map(DecisionView::from).collect()))
}
