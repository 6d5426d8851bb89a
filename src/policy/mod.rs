//! Signing policies (DESIGN §6): which images may be pulled, run or deployed, decided on
//! verified trust data and on who signed it.
//!
//! - [`reference`] normalises image references as docker does.
//! - [`pattern`] matches GUN patterns, host and path apart.
//! - [`files`] loads and checks the policy files, and reloads them when they change.
//! - [`verified`] verifies the stored trust data as a careful client would.
//! - [`decide`] applies the rules, caches decisions and keeps the decision log.
//! - [`admission`] turns Kubernetes AdmissionReviews into decisions and back.
//! - [`error`]: [`PolicyError`], why no decision could rest on the trust data.

pub mod admission;
pub mod decide;
pub mod error;
pub mod files;
pub mod pattern;
pub mod reference;
pub mod verified;

use serde::Serialize;

pub use error::PolicyError;

/// What a deploy gate is about to do with an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub enum Operation {
    #[serde(rename = "pull")]
    Pull,
    #[serde(rename = "run")]
    Run,
    #[serde(rename = "service-create")]
    ServiceCreate,
}

impl Operation {
    pub const ALL: [Operation; 3] = [Operation::Pull, Operation::Run, Operation::ServiceCreate];

    pub fn parse(text: &str) -> Option<Operation> {
        match text {
            "pull" => Some(Operation::Pull),
            "run" => Some(Operation::Run),
            "service-create" => Some(Operation::ServiceCreate),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Pull => "pull",
            Operation::Run => "run",
            Operation::ServiceCreate => "service-create",
        }
    }
}

/// A key whose valid signatures on a role other than `targets/releases` list the
/// decided digest, traced to its user and the user's teams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Signer {
    pub role: String,
    pub key_id: String,
    /// None: the key belongs to no user (or to a revoked key).
    pub user: Option<String>,
    pub teams: Vec<String>,
}

/// One rule's verdict on an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RuleOutcome {
    pub name: String,
    /// The file the rule came from.
    pub file: String,
    pub passed: bool,
    /// `enforce` or `warn`.
    pub mode: String,
}

/// The answer of `POST /v1/policy/check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    pub allowed: bool,
    /// `sha256:<hex>` of the image the decision is about, when one was resolved.
    pub digest: Option<String>,
    /// The rule that decided: the first failing enforced rule of a denial, else the
    /// rules that applied, joined with ", "; None when no rule applied.
    pub rule: Option<String>,
    pub signers: Vec<Signer>,
    /// Human-readable: why the image is allowed or denied.
    pub reasons: Vec<String>,
    pub warnings: Vec<String>,
    /// Every rule that applied, with its verdict.
    pub rules: Vec<RuleOutcome>,
}

impl Decision {
    /// A denial with nothing known yet: no reason, digest, signer or rule.
    pub fn blank() -> Decision {
        Decision {
            allowed: false,
            digest: None,
            rule: None,
            signers: Vec::new(),
            reasons: Vec::new(),
            warnings: Vec::new(),
            rules: Vec::new(),
        }
    }

    /// A denial for one reason, with nothing else known.
    pub fn deny(reason: impl Into<String>) -> Decision {
        Decision { reasons: vec![reason.into()], ..Decision::blank() }
    }
}

/// Decides single images; the admission webhook asks it about each image of a workload.
#[async_trait::async_trait]
pub trait ImageDecider: Send + Sync {
    /// Decides `image` for `operation`. A malformed reference is [`PolicyError::Reference`];
    /// the policy engine makes everything else, failures included, a `Decision` (failures
    /// deny), and the webhook denies an image whose decider fails in any other way.
    async fn decide(&self, image: &str, operation: Operation, dry_run: bool) -> Result<Decision, PolicyError>;
}
