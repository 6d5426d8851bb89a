//! The policy decision (DESIGN §6, steps 1 to 5), its cache and the decision log.
//!
//! A decision rests on four things that change: the repository's trust data (its commit
//! generation), the policy files (their version), who is who (the accounts version:
//! teams, users, keys) and time (the earliest expiry among the files relied on). A cached
//! decision carries all four; a check whose stamps still match answers from memory, with
//! no database read and no signature check. Anything else is decided afresh.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use quick_cache::sync::Cache;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::files::{DefaultAction, PolicySet, PolicyWatcher, Rule, RuleMode};
use super::reference::ImageReference;
use super::verified::{TrustInput, VerifiedRepo, target_digest, verify};
use super::{Decision, ImageDecider, Operation, PolicyError, RuleOutcome, Signer};
use crate::auth::AuthService;
use crate::store::{DecisionRecord, Store, StoreError};
use crate::telemetry::{
    CacheStats, DECISION_LOG_WRITE_DURATION, DECISION_LOG_WRITE_FAILURES, POLICY_DECISION_DURATION, POLICY_DECISIONS,
};
use crate::tuf::{BaseRole, Gun, RoleName, SignedFile};
use crate::update::{TrustService, UpdateError};

/// The role docker reads tags from first; never a signer for policy (DESIGN §6).
const RELEASES: &str = "targets/releases";

/// What a cached decision was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    generation: i64,
    policy_version: u64,
    accounts_version: u64,
}

struct Cached {
    stamp: Stamp,
    valid_until: OffsetDateTime,
    decision: Decision,
    versions: serde_json::Value,
}

/// A decision and what it rested on.
pub struct Checked {
    pub decision: Decision,
    /// The normalised reference.
    pub image: String,
    pub trust_versions: serde_json::Value,
    pub from_cache: bool,
}

pub struct PolicyEngine {
    trust: Arc<TrustService>,
    auth: Arc<AuthService>,
    policies: Arc<PolicyWatcher>,
    cache: Cache<(String, Operation), Arc<Cached>>,
    log: DecisionLog,
}

impl PolicyEngine {
    pub fn new(
        trust: Arc<TrustService>,
        auth: Arc<AuthService>,
        policies: Arc<PolicyWatcher>,
        store: Arc<dyn Store>,
        cache_entries: usize,
    ) -> PolicyEngine {
        PolicyEngine { trust, auth, policies, cache: Cache::new(cache_entries), log: DecisionLog::start(store) }
    }

    pub fn policies(&self) -> &Arc<PolicyWatcher> {
        &self.policies
    }

    pub fn log(&self) -> &DecisionLog {
        &self.log
    }

    /// The cache of decisions, for `/metrics`.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats::of(&self.cache)
    }

    /// Decides `image` for `operation` and logs the decision. A malformed reference is
    /// [`PolicyError::Reference`] (a 400), the only error; every other failure is a denial.
    pub async fn check(
        &self,
        image: &str,
        operation: Operation,
        requester: &str,
        dry_run: bool,
    ) -> Result<Checked, PolicyError> {
        let reference = ImageReference::parse(image)?;
        let started = std::time::Instant::now();
        let checked = self.decide(&reference, operation).await;
        let cached = if checked.from_cache { "true" } else { "false" };
        let outcome = if checked.decision.allowed { "allowed" } else { "denied" };
        let rule = checked.decision.rule.clone().unwrap_or_else(|| "none".to_owned());
        metrics::counter!(POLICY_DECISIONS, "outcome" => outcome, "rule" => rule, "cached" => cached).increment(1);
        metrics::histogram!(POLICY_DECISION_DURATION, "cached" => cached).record(started.elapsed().as_secs_f64());
        self.log
            .append(DecisionRecord {
                at: OffsetDateTime::now_utc(),
                requester: requester.to_owned(),
                image: checked.image.clone(),
                operation: operation.as_str().to_owned(),
                digest: checked.decision.digest.clone(),
                allowed: checked.decision.allowed,
                rule: checked.decision.rule.clone(),
                reasons: checked.decision.reasons.clone(),
                dry_run,
                trust_versions: checked.trust_versions.clone(),
            })
            .await;
        Ok(checked)
    }

    /// The decision, from the cache when nothing it rests on changed.
    pub async fn decide(&self, reference: &ImageReference, operation: Operation) -> Checked {
        let image = reference.normalized();
        let policies = self.policies.current();
        let accounts_version = self.auth.version();
        let gun = match Gun::parse(&reference.gun) {
            Ok(gun) => gun,
            Err(source) => {
                return uncached(image, failed(PolicyError::Repository { gun: reference.gun.clone(), source }));
            }
        };
        // Renewing a near-expiry timestamp first is what a client fetching it would see.
        let _ = self.trust.current(&gun, &BaseRole::Timestamp.name()).await;
        let state = match self.trust.state(&gun).await {
            Ok(state) => state,
            Err(e) => return uncached(image, failed(PolicyError::storage(format!("the trust data of {gun}"), e))),
        };
        let stamp = Stamp { generation: state.generation, policy_version: policies.version, accounts_version };
        let key = (image.clone(), operation);
        let now = OffsetDateTime::now_utc();
        if let Some(cached) = self.cache.get(&key)
            && cached.stamp == stamp
            && now < cached.valid_until
        {
            return Checked {
                decision: cached.decision.clone(),
                image,
                trust_versions: cached.versions.clone(),
                from_cache: true,
            };
        }
        let current: BTreeMap<RoleName, SignedFile> =
            state.files.iter().map(|(role, file)| (role.clone(), file.file.clone())).collect();
        let (decision, valid_until, versions) =
            match self.evaluate(&gun, reference, operation, &policies, &current, now).await {
                Ok(outcome) => outcome,
                Err(error) => (failed(error), now, json!({})),
            };
        // Transient failures (valid_until == now) are never cached.
        if valid_until > now {
            self.cache.insert(
                key,
                Arc::new(Cached { stamp, valid_until, decision: decision.clone(), versions: versions.clone() }),
            );
        }
        Checked { decision, image, trust_versions: versions, from_cache: false }
    }

    async fn evaluate(
        &self,
        gun: &Gun,
        reference: &ImageReference,
        operation: Operation,
        policies: &PolicySet,
        current: &BTreeMap<RoleName, SignedFile>,
        now: OffsetDateTime,
    ) -> Result<(Decision, OffsetDateTime, serde_json::Value), PolicyError> {
        // Decisions that need no trust data stay valid until something else changes.
        let forever = now + time::Duration::days(365);
        if !policies.content_trust {
            let mut decision = Decision::blank();
            decision.allowed = true;
            decision.digest = reference.digest.clone();
            decision.reasons = vec!["content trust is off (content_trust = false): every image is allowed".into()];
            decision.warnings = vec!["content trust is off: nothing was verified".into()];
            return Ok((decision, forever, json!({})));
        }
        let rules = policies.rules_for(gun.as_str(), operation);
        if rules.is_empty() {
            let mut decision = Decision::deny(format!(
                "no policy rule covers {} for {}; the default is {}",
                gun,
                operation.as_str(),
                match policies.default {
                    DefaultAction::Allow => "allow",
                    DefaultAction::Deny => "deny",
                }
            ));
            decision.allowed = policies.default == DefaultAction::Allow;
            decision.digest = reference.digest.clone();
            return Ok((decision, forever, json!({})));
        }

        if current.is_empty() {
            let mut decision =
                Decision::deny(format!("{gun} has no trust data: an unsigned image is never allowed by a rule"));
            decision.rule = first_enforced(&rules).or_else(|| Some(rule_names(&rules)));
            // Stands until the repository is first published (its generation changes).
            return Ok((decision, forever, json!({})));
        }
        let root_history = self.root_history(gun, current).await?;
        let archived_root = match self.trust.store().archived_root(gun.as_str()).await {
            Ok(Some(record)) => RoleName::parse("root").and_then(|role| SignedFile::parse(role, record.data).ok()),
            Ok(None) => None,
            Err(e) => return Err(PolicyError::storage(format!("the trust data of {gun}"), e)),
        };
        let input =
            TrustInput { gun, current, root_history: &root_history, archived_root: archived_root.as_ref(), now };
        let view = match verify(&input) {
            Ok(view) => view,
            Err(unverified) => {
                let mut decision = Decision::deny(unverified.to_string());
                decision.rule = first_enforced(&rules).or_else(|| Some(rule_names(&rules)));
                decision.rules = unmet(&rules);
                // A verification failure stands until the data changes (or an hour passes).
                return Ok((decision, now + time::Duration::hours(1), json!({})));
            }
        };
        let versions = serde_json::to_value(&view.versions).unwrap_or_default();
        let decision = self.apply(reference, &rules, &view).await?;
        Ok((decision, view.valid_until, versions))
    }

    /// Every stored version of root, 1 to the current one.
    async fn root_history(
        &self,
        gun: &Gun,
        current: &BTreeMap<RoleName, SignedFile>,
    ) -> Result<Vec<SignedFile>, PolicyError> {
        let Some(root) = current.get(&BaseRole::Root.name()) else {
            return Ok(Vec::new());
        };
        let mut history = Vec::with_capacity(root.version as usize);
        for version in 1..root.version {
            let served = self.trust.by_version(gun, &BaseRole::Root.name(), version).await.map_err(|e| match e {
                UpdateError::NotFound => PolicyError::MissingRoot { gun: gun.to_string(), version },
                other => PolicyError::storage(format!("root version {version} of {gun}"), other),
            })?;
            let file = SignedFile::parse(BaseRole::Root.name(), served.bytes)
                .map_err(|source| PolicyError::MalformedRoot { gun: gun.to_string(), version, source })?;
            history.push(file);
        }
        history.push(root.clone());
        Ok(history)
    }

    /// Steps 3 to 5 on verified data.
    async fn apply(
        &self,
        reference: &ImageReference,
        rules: &[&Rule],
        view: &VerifiedRepo,
    ) -> Result<Decision, PolicyError> {
        let mut decision = Decision::blank();
        decision.rule = Some(rule_names(rules));
        decision.warnings.extend(view.notes.iter().cloned());
        decision.reasons.extend(view.notes.iter().cloned());

        // Step 3: the digest a docker client would pull.
        let digest = match resolve(reference, view) {
            Ok(digest) => digest,
            Err(unresolved) => {
                decision.reasons.push(unresolved.to_string());
                decision.reasons.extend(broken_reasons(view));
                decision.rule = first_enforced(rules).or(decision.rule);
                decision.rules = unmet(rules);
                return Ok(decision);
            }
        };
        decision.digest = Some(format!("sha256:{digest}"));

        // Step 4: the roles other than releases that list it, and their signers.
        let mut signers = Vec::new();
        for (name, role) in &view.roles {
            if name.as_str() == RELEASES {
                continue;
            }
            let lists = match &reference.tag {
                Some(tag) => match role.target_sha256(tag) {
                    Some(Ok(listed)) if listed == digest => true,
                    Some(Ok(listed)) => {
                        decision.reasons.push(format!(
                            "{name} signs {tag} as sha256:{listed}, but the tag resolves to sha256:{digest}: \
                             conflicting digests"
                        ));
                        decision.rule = first_enforced(rules).or(decision.rule);
                        decision.rules = unmet(rules);
                        return Ok(decision);
                    }
                    Some(Err(malformed)) => {
                        decision.warnings.push(malformed.to_string());
                        false
                    }
                    None => false,
                },
                None => role.file.targets().is_some_and(|body| {
                    body.targets.iter().any(|(target, meta)| {
                        role.admits(target) && target_digest(meta).is_ok_and(|listed| listed == digest)
                    })
                }),
            };
            if !lists {
                continue;
            }
            for key in &role.signers {
                let owner =
                    self.auth.key_owner(&key.material).await.map_err(|e| PolicyError::storage("users' keys", e))?;
                let (user, teams) = owner.map_or((None, Vec::new()), |(user, teams)| (Some(user), teams));
                signers.push(Signer { role: name.to_string(), key_id: key.id.clone(), user, teams });
            }
        }
        decision.signers = signers;
        let broken = broken_reasons(view);

        // Step 5: every rule that applies must pass.
        let users: BTreeSet<&str> = decision.signers.iter().filter_map(|s| s.user.as_deref()).collect();
        let mut denied_by = None;
        for rule in rules {
            let mut failures = Vec::new();
            for team in &rule.signed_by_teams {
                if !decision.signers.iter().any(|s| s.user.is_some() && s.teams.contains(team)) {
                    failures.push(format!("no member of team {team} signed {}", reference.normalized()));
                }
            }
            if users.len() < rule.min_signers {
                failures.push(format!(
                    "{} distinct signing user(s) of the {} required (targets/releases does not count)",
                    users.len(),
                    rule.min_signers
                ));
            }
            let passed = failures.is_empty();
            decision.rules.push(RuleOutcome {
                name: rule.name.clone(),
                file: rule.file.clone(),
                passed,
                mode: rule.mode.as_str().into(),
            });
            if passed {
                decision.reasons.push(format!("rule {:?} is satisfied", rule.name));
                continue;
            }
            let text = format!("rule {:?}: {}", rule.name, failures.join("; "));
            match rule.mode {
                RuleMode::Enforce => {
                    decision.reasons.push(text);
                    denied_by.get_or_insert_with(|| rule.name.clone());
                }
                RuleMode::Warn => {
                    let text = format!("{text} (warn mode: allowed)");
                    decision.reasons.push(text.clone());
                    decision.warnings.push(text);
                }
            }
        }
        decision.allowed = denied_by.is_none();
        if let Some(rule) = denied_by {
            decision.rule = Some(rule);
            decision.reasons.extend(broken);
        } else {
            decision.warnings.extend(broken);
        }
        Ok(decision)
    }

    /// The decision log, newest first, at most `limit` records. `image` is normalised as
    /// checks log it, so `nginx` finds `docker.io/library/nginx:latest`. Records still
    /// queued are written first, so a caller reads its own decisions.
    pub async fn decisions(&self, image: Option<&str>, limit: i64) -> Result<Vec<DecisionRecord>, StoreError> {
        let image =
            image.map(|text| ImageReference::parse(text).map(|r| r.normalized()).unwrap_or_else(|_| text.to_owned()));
        self.log.sync().await;
        self.trust.store().decisions(image.as_deref(), limit.clamp(1, 10_000)).await
    }
}

fn uncached(image: String, decision: Decision) -> Checked {
    Checked { decision, image, trust_versions: json!({}), from_cache: false }
}

/// The denial for a decision that could not be made: fails closed, with the error as the
/// reason. A failed read is logged here, once; the caller gets a decision, not an error.
fn failed(error: PolicyError) -> Decision {
    if let PolicyError::Storage { source, .. } = &error {
        tracing::error!(error = %error, cause = %source, "a policy check failed closed");
    }
    Decision::deny(error.to_string())
}

/// Every rule as failed: for decisions that stop before the rules can be weighed.
fn unmet(rules: &[&Rule]) -> Vec<RuleOutcome> {
    rules
        .iter()
        .map(|r| RuleOutcome {
            name: r.name.clone(),
            file: r.file.clone(),
            passed: false,
            mode: r.mode.as_str().to_owned(),
        })
        .collect()
}

fn rule_names(rules: &[&Rule]) -> String {
    rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", ")
}

fn first_enforced(rules: &[&Rule]) -> Option<String> {
    rules.iter().find(|r| r.mode == RuleMode::Enforce).map(|r| r.name.clone())
}

fn broken_reasons(view: &VerifiedRepo) -> Vec<String> {
    view.broken.iter().map(|(role, why)| format!("{role} was not trusted: {why}")).collect()
}

/// DESIGN §6 step 3: a tag resolves in `targets/releases` if it is there, else in
/// `targets`; a digest reference is taken as given, and with a tag must agree with it.
fn resolve(reference: &ImageReference, view: &VerifiedRepo) -> Result<String, PolicyError> {
    let given = reference.digest.as_ref().map(|d| d.trim_start_matches("sha256:").to_owned());
    let Some(tag) = &reference.tag else {
        return given.ok_or(PolicyError::NeitherTagNorDigest);
    };
    let releases = RoleName::parse(RELEASES).and_then(|name| {
        if let Some(why) = view.broken.get(&name) {
            return Some(Err(PolicyError::UntrustedReleases { reason: why.clone() }));
        }
        view.roles.get(&name).and_then(|role| role.target_sha256(tag))
    });
    let resolved = match releases {
        Some(found) => found?,
        None => match view.roles.get(&BaseRole::Targets.name()).and_then(|role| role.target_sha256(tag)) {
            Some(found) => found?,
            None => return Err(PolicyError::UnsignedTag { tag: tag.clone() }),
        },
    };
    if let Some(given) = given
        && given != resolved
    {
        return Err(PolicyError::DigestMismatch { tag: tag.clone(), pinned: given, signed: resolved });
    }
    Ok(resolved)
}

/// Decisions for the admission webhook, on behalf of one requester.
pub struct GateDecider<'a> {
    pub engine: &'a PolicyEngine,
    pub requester: String,
}

#[async_trait::async_trait]
impl ImageDecider for GateDecider<'_> {
    async fn decide(&self, image: &str, operation: Operation, dry_run: bool) -> Result<Decision, PolicyError> {
        self.engine.check(image, operation, &self.requester, dry_run).await.map(|checked| checked.decision)
    }
}

/// The decision log: checks queue their records; one task writes them in batches, so no
/// check waits on the database. The queue is bounded: under overload a check waits for
/// room, and no record is ever dropped.
pub struct DecisionLog {
    sender: std::sync::Mutex<Option<mpsc::Sender<LogMessage>>>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
}

enum LogMessage {
    Record(DecisionRecord),
    /// Answered once every record queued before it is written.
    Barrier(oneshot::Sender<()>),
}

/// Records the queue holds before checks wait.
const LOG_QUEUE: usize = 10_000;
/// Most records per write.
const LOG_BATCH: usize = 1_000;

impl DecisionLog {
    fn start(store: Arc<dyn Store>) -> DecisionLog {
        let (sender, mut receiver) = mpsc::channel::<LogMessage>(LOG_QUEUE);
        let writer = tokio::spawn(async move {
            let mut messages = Vec::with_capacity(LOG_BATCH);
            while receiver.recv_many(&mut messages, LOG_BATCH).await > 0 {
                let mut barriers = Vec::new();
                let batch: Vec<DecisionRecord> = messages
                    .drain(..)
                    .filter_map(|message| match message {
                        LogMessage::Record(record) => Some(record),
                        LogMessage::Barrier(done) => {
                            barriers.push(done);
                            None
                        }
                    })
                    .collect();
                // A failed write is retried, never skipped.
                let mut delay = std::time::Duration::from_millis(50);
                loop {
                    let started = std::time::Instant::now();
                    let written = store.insert_decisions(&batch).await;
                    metrics::histogram!(DECISION_LOG_WRITE_DURATION).record(started.elapsed().as_secs_f64());
                    let Err(e) = written else { break };
                    metrics::counter!(DECISION_LOG_WRITE_FAILURES).increment(1);
                    tracing::error!(error = %e, records = batch.len(), "writing the decision log failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(5));
                }
                for done in barriers {
                    let _ = done.send(());
                }
            }
        });
        DecisionLog { sender: std::sync::Mutex::new(Some(sender)), writer: std::sync::Mutex::new(Some(writer)) }
    }

    fn sender(&self) -> Option<mpsc::Sender<LogMessage>> {
        self.sender.lock().ok().and_then(|s| s.clone())
    }

    async fn append(&self, record: DecisionRecord) {
        let sent = match self.sender() {
            Some(sender) => sender.send(LogMessage::Record(record)).await.is_ok(),
            None => false,
        };
        if !sent {
            tracing::error!("the decision log is closed; a decision was not recorded");
        }
    }

    /// Records queued and not yet written (barriers included), for `/metrics`.
    pub fn queue_depth(&self) -> usize {
        self.sender().map_or(0, |sender| sender.max_capacity() - sender.capacity())
    }

    /// Waits until every record queued before the call is written: a reader of the log
    /// then sees its own decisions.
    pub async fn sync(&self) {
        let (done, written) = oneshot::channel();
        if let Some(sender) = self.sender()
            && sender.send(LogMessage::Barrier(done)).await.is_ok()
        {
            let _ = written.await;
        }
    }

    /// Writes everything queued and stops the writer (server shutdown).
    pub async fn close(&self) {
        // The writer drains the queue and stops once every sender is gone; the clones
        // held by checks in flight go with them.
        let sender = self.sender.lock().ok().and_then(|mut s| s.take());
        drop(sender);
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(writer) = writer {
            let _ = writer.await;
        }
    }
}
