//! Kubernetes admission (DESIGN §6, "Admission"): `admission.k8s.io/v1` AdmissionReviews in,
//! decisions on every image of the workload out.
//!
//! [`review`] reads the review the API server sent to `POST /v1/admission/validate` or
//! `/v1/admission/mutate`, finds the images of the object with [`images_of`], asks the
//! [`ImageDecider`] about each distinct image with operation `run`, and answers with an
//! AdmissionReview whose `response.uid` is the request's uid.
//!
//! - Kinds: `Pod` (core), `Deployment`, `ReplicaSet`, `StatefulSet`, `DaemonSet` (apps),
//!   `Job`, `CronJob` (batch) and `ReplicationController` (core), all in version `v1`; and the
//!   `pods/ephemeralcontainers` subresource, where only the ephemeral containers are checked
//!   and patched (the API server refuses changes to anything else through that subresource;
//!   the pre-1.22 `EphemeralContainers` kind there is denied).
//!   Every other kind, group or subresource is not our business and is allowed untouched: the
//!   webhook rules (docs/kubernetes.md) only send the kinds above. Another version of a listed
//!   kind (say `batch/v1beta1` CronJob) is denied, saying so, rather than read wrongly.
//! - Every image of `containers`, `initContainers`, `ephemeralContainers` and image volumes
//!   (`volumes[].image.reference`) must be allowed;
//!   one denied image denies the whole object, and the message names each failing image with
//!   the containers that use it and the reasons. A reference the decider cannot parse denies
//!   with the decider's message.
//! - DELETE and CONNECT are allowed. An UPDATE of an object that is being deleted
//!   (`metadata.deletionTimestamp` set) whose images are those of the old object is allowed
//!   without a decision, so finalizers can always be removed (lesson 4 of the anchors).
//! - Identical image strings are decided once (a Pod with 1000 copies of one image costs one
//!   decision), at most [`CONCURRENCY`] at a time, at most [`MAX_DISTINCT_IMAGES`] per object,
//!   and all within [`DECISION_BUDGET`]: an image without a decision in time denies, so the
//!   answer reaches the API server before its `timeoutSeconds` (10 s in our configuration).
//! - `request.dryRun` is passed to the decider, which records the decision as a dry run; the
//!   answer is the same as without it.
//! - Mutate: each allowed image whose reference does not already carry the decided digest is
//!   replaced by the reference as written plus `@sha256:<digest>`, keeping the tag
//!   (`registry.example.com/app:v1@sha256:…`): the runtime pulls by digest and ignores the
//!   tag, and the tag keeps the manifest readable. A reference that already pins a digest is
//!   left alone when it is the decided digest and denied when it is not. The patch is a list
//!   of JSONPatch `replace` operations sorted by pointer, the same for the same input, so a
//!   reinvocation of the mutating webhook on its own output adds nothing. It is sent base64
//!   encoded with `patchType: JSONPatch`. No patch on a denial, and never from the validate
//!   endpoint.
//! - Warnings of the decisions (warn-mode rules included) become `response.warnings`, each
//!   prefixed with its image; the deny message is kept under [`MESSAGE_LIMIT`] bytes and the
//!   warnings under [`MAX_WARNINGS`] entries of [`WARNING_LIMIT`] bytes.
//!
//! Image volumes (`spec.volumes[].image`, mounted read-only and `noexec`) are not checked.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures_util::future::join_all;
use json_patch::jsonptr::PointerBuf;
use json_patch::{Patch, PatchOperation, ReplaceOperation};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, PodSpec, ReplicationController};
use kube_core::admission::{
    AdmissionRequest, AdmissionResponse, AdmissionReview, META_API_VERSION_V1, META_KIND,
    Operation as AdmissionOperation, SerializePatchError,
};
use kube_core::{DynamicObject, Status};
use serde_json::Value;

use super::reference::ReferenceError;
use super::{Decision, ImageDecider, Operation, PolicyError};
use crate::text::truncate_with_ellipsis;

/// Distinct images decided at the same time.
pub const CONCURRENCY: usize = 16;
/// More distinct images than this in one object deny it without a decision (KA-11).
pub const MAX_DISTINCT_IMAGES: usize = 256;
/// Time for all decisions of one review; images still undecided then deny.
pub const DECISION_BUDGET: Duration = Duration::from_secs(8);
/// Upper bound, in bytes, of the deny message (`response.status.message`).
pub const MESSAGE_LIMIT: usize = 4096;
/// Upper bound, in bytes, of one image's part of the deny message.
const ENTRY_LIMIT: usize = 1024;
/// Upper bound, in bytes, of one warning (the API server may truncate longer ones).
pub const WARNING_LIMIT: usize = 256;
/// Upper bound of the number of warnings, the last one counting those left out. With
/// [`WARNING_LIMIT`] this stays under the 4096 bytes of warnings the API server passes on.
pub const MAX_WARNINGS: usize = 15;
/// Containers named per image in the deny message before "and N more".
const LOCATIONS_SHOWN: usize = 3;

/// A review notarius cannot answer. Every variant but [`AdmissionError::Response`] and
/// [`AdmissionError::Patch`] is the sender's mistake (400 `INVALID` with the message); those
/// two are the server's failure (500). A denied image is never an error: it is an answer.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error("the admission review is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("expected apiVersion {expected_api_version:?} and kind {expected_kind:?}, got apiVersion {api_version:?} and kind {kind:?}", expected_api_version = META_API_VERSION_V1, expected_kind = META_KIND)]
    WrongType { api_version: String, kind: String },
    #[error("the admission review has no request")]
    NoRequest,
    #[error("malformed admission request: {0}")]
    Request(#[source] serde_json::Error),
    #[error("malformed admission request: the request has no uid")]
    NoUid,
    #[error("the {operation} admission request has no object")]
    MissingObject { operation: &'static str },
    #[error("the object is not a valid {kind}: {message}")]
    Object { kind: String, message: String },
    #[error("notarius does not read the images of kind {0:?}")]
    UnsupportedKind(String),
    #[error("cannot encode the admission response: {0}")]
    Response(#[source] serde_json::Error),
    #[error("cannot encode the admission response: {0}")]
    Patch(#[source] SerializePatchError),
}

/// One image field of a workload object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageField {
    /// JSON pointer of the image string in the object, e.g. `/spec/template/spec/containers/0/image`.
    pub pointer: String,
    /// The image reference as written.
    pub image: String,
    /// The container's name.
    pub container: String,
    /// `"containers"`, `"initContainers"`, `"ephemeralContainers"`, or `"volumes"` for
    /// an image volume (the name is then the volume's).
    pub section: &'static str,
}

impl ImageField {
    /// `containers[0] "web"`: where the image is, for messages.
    fn location(&self) -> String {
        let index = self.pointer.rsplit('/').nth(1).unwrap_or("?");
        format!("{}[{index}] {:?}", self.section, self.container)
    }
}

/// The kinds whose images notarius checks: (API group, kind). All are served as version `v1`.
const WORKLOADS: [(&str, &str); 8] = [
    ("", "Pod"),
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("", "ReplicationController"),
];

/// The images of a workload object of `kind` (one of [`WORKLOADS`]), with the JSON pointer of
/// each image field: `containers`, then `initContainers`, then `ephemeralContainers`, then
/// image volumes, each in order. The object is read as the typed Kubernetes object, so a malformed one is an error
/// naming the problem. Containers without an image (allowed in pod templates, which a later
/// webhook or controller may fill) have no image field; the Pods made from them are checked.
pub fn images_of(kind: &str, object: &Value) -> Result<Vec<ImageField>, AdmissionError> {
    let (base, spec) = match kind {
        "Pod" => ("/spec", typed::<Pod>(kind, object)?.spec),
        "Deployment" => ("/spec/template/spec", typed::<Deployment>(kind, object)?.spec.and_then(|s| s.template.spec)),
        "ReplicaSet" => (
            "/spec/template/spec",
            typed::<ReplicaSet>(kind, object)?.spec.and_then(|s| s.template).and_then(|t| t.spec),
        ),
        "StatefulSet" => {
            ("/spec/template/spec", typed::<StatefulSet>(kind, object)?.spec.and_then(|s| s.template.spec))
        }
        "DaemonSet" => ("/spec/template/spec", typed::<DaemonSet>(kind, object)?.spec.and_then(|s| s.template.spec)),
        "Job" => ("/spec/template/spec", typed::<Job>(kind, object)?.spec.and_then(|s| s.template.spec)),
        "ReplicationController" => (
            "/spec/template/spec",
            typed::<ReplicationController>(kind, object)?.spec.and_then(|s| s.template).and_then(|t| t.spec),
        ),
        "CronJob" => (
            "/spec/jobTemplate/spec/template/spec",
            typed::<CronJob>(kind, object)?.spec.and_then(|s| s.job_template.spec).and_then(|j| j.template.spec),
        ),
        _ => return Err(AdmissionError::UnsupportedKind(kind.to_owned())),
    };
    Ok(spec.map(|spec| fields_of(base, &spec)).unwrap_or_default())
}

fn typed<T: serde::de::DeserializeOwned>(kind: &str, object: &Value) -> Result<T, AdmissionError> {
    if !object.is_object() {
        return Err(AdmissionError::Object { kind: kind.to_owned(), message: "not a JSON object".to_owned() });
    }
    T::deserialize(object).map_err(|e| AdmissionError::Object { kind: kind.to_owned(), message: e.to_string() })
}

fn fields_of(base: &str, spec: &PodSpec) -> Vec<ImageField> {
    let mut fields = Vec::new();
    let mut add = |section: &'static str, index: usize, field: &str, name: &str, image: Option<&str>| {
        if let Some(image) = image.filter(|image| !image.is_empty()) {
            fields.push(ImageField {
                pointer: format!("{base}/{section}/{index}/{field}"),
                image: image.to_owned(),
                container: name.to_owned(),
                section,
            });
        }
    };
    for (index, c) in spec.containers.iter().enumerate() {
        add("containers", index, "image", &c.name, c.image.as_deref());
    }
    for (index, c) in spec.init_containers.iter().flatten().enumerate() {
        add("initContainers", index, "image", &c.name, c.image.as_deref());
    }
    for (index, c) in spec.ephemeral_containers.iter().flatten().enumerate() {
        add("ephemeralContainers", index, "image", &c.name, c.image.as_deref());
    }
    // Image volumes (an OCI image mounted as a volume) are pulled like container images:
    // an unsigned one must not slip in beside signed containers.
    for (index, volume) in spec.volumes.iter().flatten().enumerate() {
        let reference = volume.image.as_ref().and_then(|image| image.reference.as_deref());
        add("volumes", index, "image/reference", &volume.name, reference);
    }
    fields
}

/// Decides an `admission.k8s.io/v1` AdmissionReview (the raw request body) and returns the
/// AdmissionReview response JSON. `mutate` adds the digest-pinning patch (the mutate
/// endpoint); the validate endpoint passes false.
///
/// Distinct images are decided concurrently, [`CONCURRENCY`] at a time, within
/// [`DECISION_BUDGET`].
pub async fn review(body: &[u8], mutate: bool, decider: &dyn ImageDecider) -> Result<Value, AdmissionError> {
    let mut value: Value = serde_json::from_slice(body).map_err(AdmissionError::NotJson)?;
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    if api_version != META_API_VERSION_V1 || kind != META_KIND {
        return Err(AdmissionError::WrongType { api_version, kind });
    }
    // The objects are read as typed Kubernetes objects below; kube-core reads the rest.
    let fields = value.get_mut("request").and_then(Value::as_object_mut).ok_or(AdmissionError::NoRequest)?;
    let object = fields.remove("object").filter(|v| !v.is_null());
    let old_object = fields.remove("oldObject").filter(|v| !v.is_null());
    let review: AdmissionReview<DynamicObject> = serde_json::from_value(value).map_err(AdmissionError::Request)?;
    let request: AdmissionRequest<DynamicObject> = review.try_into().map_err(|_| AdmissionError::NoRequest)?;
    if request.uid.is_empty() {
        return Err(AdmissionError::NoUid);
    }
    let response = AdmissionResponse::from(&request);

    let operation = match request.operation {
        AdmissionOperation::Create => "CREATE",
        AdmissionOperation::Update => "UPDATE",
        AdmissionOperation::Delete | AdmissionOperation::Connect => return encode(response),
    };
    let gvk = &request.kind;
    let sub_resource = request.sub_resource.as_deref().unwrap_or_default();
    if sub_resource == "ephemeralcontainers" && (gvk.group.as_str(), gvk.kind.as_str()) != ("", "Pod") {
        // API servers before 1.22 sent an `EphemeralContainers` object here; fail closed.
        let message = format!("notarius reads pods/ephemeralcontainers as a v1 Pod, not as {}", gvk.kind);
        return encode(deny(response, message));
    }
    let Some(&(_, kind)) = WORKLOADS.iter().find(|(group, kind)| *group == gvk.group && *kind == gvk.kind) else {
        return encode(response);
    };
    let ephemeral_only = match (kind, sub_resource) {
        (_, "") => false,
        ("Pod", "ephemeralcontainers") => true,
        // status, scale and the like cannot change images.
        _ => return encode(response),
    };
    let object = object.ok_or(AdmissionError::MissingObject { operation })?;
    if gvk.version != "v1" {
        let group = if gvk.group.is_empty() { String::new() } else { format!("{}/", gvk.group) };
        let message = format!(
            "notarius checks {group}v1 {kind}, not {group}{} (register the webhook for v1 with matchPolicy Equivalent)",
            gvk.version
        );
        return encode(deny(response, message));
    }
    let mut fields = images_of(kind, &object)?;
    if ephemeral_only {
        fields.retain(|f| f.section == "ephemeralContainers");
    }
    if request.operation == AdmissionOperation::Update && being_deleted(&object) {
        let unchanged = old_object
            .and_then(|old| images_of(kind, &old).ok())
            .is_some_and(|old| same_images(&old, &fields, ephemeral_only));
        if unchanged {
            return encode(response);
        }
    }

    let verdict = decide(&fields, request.dry_run, decider).await;
    let mut response = response;
    if !verdict.warnings.is_empty() {
        response.warnings = Some(verdict.warnings);
    }
    if !verdict.denials.is_empty() {
        tracing::info!(
            uid = %request.uid,
            kind,
            namespace = request.namespace.as_deref().unwrap_or_default(),
            name = %request.name,
            denied = verdict.denials.len(),
            dry_run = request.dry_run,
            "admission denied"
        );
        return encode(deny(response, deny_message(&verdict.denials)));
    }
    if mutate && !verdict.patch.is_empty() {
        response = response.with_patch(Patch(verdict.patch)).map_err(AdmissionError::Patch)?;
    }
    encode(response)
}

/// The AdmissionReview JSON of `response`. kube-core writes `patch` as an array of byte values,
/// which Go's decoder happens to accept; it is written here as Kubernetes documents it and Go
/// encodes a `[]byte`: base64 text.
fn encode(response: AdmissionResponse) -> Result<Value, AdmissionError> {
    use base64::Engine as _;
    let patch = response.patch.as_deref().map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes));
    let mut review = serde_json::to_value(response.into_review()).map_err(AdmissionError::Response)?;
    if let (Some(patch), Some(field)) = (patch, review.pointer_mut("/response/patch")) {
        *field = Value::String(patch);
    }
    Ok(review)
}

fn deny(response: AdmissionResponse, message: String) -> AdmissionResponse {
    let mut response = response.deny("");
    let mut status = Status::failure(&message, "Forbidden");
    status.code = 403;
    response.result = status;
    response
}

fn being_deleted(object: &Value) -> bool {
    object.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null())
}

fn same_images(old: &[ImageField], new: &[ImageField], ephemeral_only: bool) -> bool {
    let key = |fields: &[ImageField]| -> Vec<(String, String)> {
        fields
            .iter()
            .filter(|f| !ephemeral_only || f.section == "ephemeralContainers")
            .map(|f| (f.pointer.clone(), f.image.clone()))
            .collect()
    };
    key(old) == key(new)
}

/// What became of one distinct image.
enum Outcome {
    Decided(Decision),
    /// The decider could not read the reference.
    Invalid(ReferenceError),
    /// The decider failed otherwise.
    Failed(PolicyError),
    /// No decision within the budget.
    Late,
}

/// One denied image, with where it is used and why, for the message.
struct Denial {
    /// `image "nginx:latest"`, or what else was denied.
    subject: String,
    locations: Vec<String>,
    why: String,
}

struct Verdict {
    denials: Vec<Denial>,
    warnings: Vec<String>,
    patch: Vec<PatchOperation>,
}

async fn decide(fields: &[ImageField], dry_run: bool, decider: &dyn ImageDecider) -> Verdict {
    // Distinct images in the order they first appear; each with the fields that use it.
    let mut order: Vec<&str> = Vec::new();
    let mut uses: BTreeMap<&str, Vec<&ImageField>> = BTreeMap::new();
    for field in fields {
        let entry = uses.entry(field.image.as_str()).or_default();
        if entry.is_empty() {
            order.push(field.image.as_str());
        }
        entry.push(field);
    }
    let locations = |image: &str| uses.get(image).map(|f| f.iter().map(|f| f.location()).collect()).unwrap_or_default();

    let mut verdict = Verdict { denials: Vec::new(), warnings: Vec::new(), patch: Vec::new() };
    if order.len() > MAX_DISTINCT_IMAGES {
        verdict.denials.push(Denial {
            subject: format!("{} distinct images", order.len()),
            locations: Vec::new(),
            why: format!("more than {MAX_DISTINCT_IMAGES} distinct images in one object; none was decided"),
        });
        return verdict;
    }

    let outcomes = decide_all(decider, &order, dry_run, tokio::time::Instant::now() + DECISION_BUDGET).await;
    let mut warnings = Vec::new();
    for (image, outcome) in order.iter().copied().zip(outcomes) {
        let why = match outcome {
            Outcome::Invalid(error) => Some(format!("invalid image reference: {error}")),
            Outcome::Failed(error) => Some(format!("no decision: {error}")),
            Outcome::Late => Some(format!("no decision within {} s", DECISION_BUDGET.as_secs())),
            Outcome::Decided(decision) => {
                for warning in &decision.warnings {
                    warnings.push(format!("image {image:?}: {warning}"));
                }
                if !decision.allowed {
                    let reasons = decision.reasons.join("; ");
                    Some(if reasons.is_empty() { "denied".to_owned() } else { format!("denied: {reasons}") })
                } else {
                    match decision.digest.as_deref().map(|digest| pin(image, digest)) {
                        None | Some(Ok(None)) => None,
                        Some(Ok(Some(pinned))) => {
                            for field in uses.get(image).into_iter().flatten() {
                                verdict.patch.push(replace(&field.pointer, &pinned));
                            }
                            None
                        }
                        Some(Err(why)) => Some(format!("denied: {why}")),
                    }
                }
            }
        };
        if let Some(why) = why {
            verdict.denials.push(Denial { subject: format!("image {image:?}"), locations: locations(image), why });
        }
    }
    verdict.patch.sort_by_cached_key(|op| pointer_order(op.path().as_str()));
    verdict.warnings = bound_warnings(warnings);
    verdict
}

/// Why an allowed image cannot be pinned to its decided digest: it denies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum PinError {
    #[error("the decided digest {0:?} is not a sha256 digest")]
    NotSha256(String),
    #[error("the reference pins {written} but the signed digest is {decided}")]
    OtherDigest { written: String, decided: String },
}

/// The reference pinned to `digest`: `None` when it already is; an error when it pins another
/// digest or the decided digest is not a sha256 digest.
fn pin(image: &str, digest: &str) -> Result<Option<String>, PinError> {
    let hex = digest.strip_prefix("sha256:").unwrap_or_default();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(PinError::NotSha256(digest.to_owned()));
    }
    match image.split_once('@') {
        None => Ok(Some(format!("{image}@{digest}"))),
        Some((_, written)) if written == digest => Ok(None),
        Some((_, written)) => Err(PinError::OtherDigest { written: written.to_owned(), decided: digest.to_owned() }),
    }
}

fn replace(pointer: &str, image: &str) -> PatchOperation {
    let path = PointerBuf::from_tokens(pointer.split('/').skip(1));
    PatchOperation::Replace(ReplaceOperation { path, value: Value::String(image.to_owned()) })
}

/// Sort key of a JSON pointer: its tokens, array indices compared as numbers.
fn pointer_order(pointer: &str) -> Vec<(u8, u64, String)> {
    pointer
        .split('/')
        .map(|token| match token.parse::<u64>() {
            Ok(n) => (0, n, String::new()),
            Err(_) => (1, 0, token.to_owned()),
        })
        .collect()
}

/// The outcome of each of `images`, in order: decided [`CONCURRENCY`] at a time, a group
/// starting when the one before it is done. When `deadline` passes, the group in progress and
/// those after it are [`Outcome::Late`].
async fn decide_all(
    decider: &dyn ImageDecider,
    images: &[&str],
    dry_run: bool,
    deadline: tokio::time::Instant,
) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(images.len());
    for chunk in images.chunks(CONCURRENCY) {
        // Side by side on the calling task: the decider is borrowed, so they cannot be spawned.
        let decisions = join_all(chunk.iter().map(|image| decider.decide(image, Operation::Run, dry_run)));
        match tokio::time::timeout_at(deadline, decisions).await {
            Ok(done) => outcomes.extend(done.into_iter().map(|result| match result {
                Ok(decision) => Outcome::Decided(decision),
                Err(PolicyError::Reference(error)) => Outcome::Invalid(error),
                Err(error) => Outcome::Failed(error),
            })),
            Err(_) => break,
        }
    }
    outcomes.resize_with(images.len(), || Outcome::Late);
    outcomes
}

/// The deny message: one line per denied image, at most [`MESSAGE_LIMIT`] bytes.
fn deny_message(denials: &[Denial]) -> String {
    let mut message = String::new();
    for (index, denial) in denials.iter().enumerate() {
        let mut entry = denial.subject.clone();
        if !denial.locations.is_empty() {
            let shown = denial.locations.iter().take(LOCATIONS_SHOWN).cloned().collect::<Vec<_>>().join(", ");
            let more = denial.locations.len().saturating_sub(LOCATIONS_SHOWN);
            entry.push_str(&format!(" ({shown}"));
            if more > 0 {
                entry.push_str(&format!(" and {more} more"));
            }
            entry.push(')');
        }
        entry.push_str(": ");
        entry.push_str(&denial.why);
        let entry = truncate_with_ellipsis(&entry, ENTRY_LIMIT);
        let rest = denials.len() - index - 1;
        let tail = if rest > 0 { format!("\n… and {rest} more denied images") } else { String::new() };
        let separator = if message.is_empty() { "" } else { "\n" };
        if message.len() + separator.len() + entry.len() + tail.len() > MESSAGE_LIMIT {
            message.push_str(&format!("{separator}… and {} more denied images", rest + 1));
            break;
        }
        message.push_str(separator);
        message.push_str(&entry);
    }
    message
}

fn bound_warnings(warnings: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut unique: Vec<String> = warnings
        .into_iter()
        .map(|w| truncate_with_ellipsis(&w, WARNING_LIMIT))
        .filter(|w| seen.insert(w.clone()))
        .collect();
    if unique.len() > MAX_WARNINGS {
        let more = unique.len() - (MAX_WARNINGS - 1);
        unique.truncate(MAX_WARNINGS - 1);
        unique.push(format!("… and {more} more warnings"));
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, EphemeralContainer};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use serde_json::json;
    use std::sync::Mutex;

    const SIGNED: &str = "registry.example.com/prod/web:v1";

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn allowed(digest: &str) -> Decision {
        Decision {
            allowed: true,
            digest: Some(digest.to_owned()),
            rule: None,
            signers: Vec::new(),
            reasons: Vec::new(),
            warnings: Vec::new(),
            rules: Vec::new(),
        }
    }

    /// Allows `SIGNED` (digest a), denies everything else; records the calls.
    #[derive(Default)]
    struct Table {
        calls: Mutex<Vec<(String, bool)>>,
    }

    #[async_trait::async_trait]
    impl ImageDecider for Table {
        async fn decide(&self, image: &str, operation: Operation, dry_run: bool) -> Result<Decision, PolicyError> {
            assert_eq!(operation, Operation::Run);
            self.calls.lock().unwrap().push((image.to_owned(), dry_run));
            match image {
                SIGNED => Ok(allowed(&digest('a'))),
                _ if image.starts_with(SIGNED) => Ok(allowed(&digest('a'))),
                _ => Ok(Decision::deny("unsigned")),
            }
        }
    }

    fn container(name: &str, image: &str) -> Container {
        Container { name: name.to_owned(), image: Some(image.to_owned()), ..Default::default() }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>, ephemeral: Vec<EphemeralContainer>) -> Value {
        serde_json::to_value(Pod {
            metadata: ObjectMeta { name: Some("p".to_owned()), ..Default::default() },
            spec: Some(PodSpec {
                containers,
                init_containers: Some(init),
                ephemeral_containers: Some(ephemeral),
                ..Default::default()
            }),
            status: None,
        })
        .unwrap()
    }

    fn review_of(kind: (&str, &str, &str), operation: &str, object: Option<Value>, old: Option<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": { "group": kind.0, "version": kind.1, "kind": kind.2 },
                "resource": { "group": kind.0, "version": kind.1, "resource": "pods" },
                "operation": operation,
                "userInfo": {},
                "object": object,
                "oldObject": old,
            }
        }))
        .unwrap()
    }

    #[test]
    fn images_of_a_pod_in_every_section() {
        let ephemeral =
            EphemeralContainer { name: "dbg".to_owned(), image: Some("busybox".to_owned()), ..Default::default() };
        let object = pod(
            vec![container("web", SIGNED), Container { name: "templated".to_owned(), ..Default::default() }],
            vec![container("setup", "alpine:3")],
            vec![ephemeral],
        );
        let fields = images_of("Pod", &object).unwrap();
        let got: Vec<_> =
            fields.iter().map(|f| (f.pointer.as_str(), f.image.as_str(), f.section, f.location())).collect();
        assert_eq!(
            got,
            [
                ("/spec/containers/0/image", SIGNED, "containers", "containers[0] \"web\"".to_owned()),
                (
                    "/spec/initContainers/0/image",
                    "alpine:3",
                    "initContainers",
                    "initContainers[0] \"setup\"".to_owned()
                ),
                (
                    "/spec/ephemeralContainers/0/image",
                    "busybox",
                    "ephemeralContainers",
                    "ephemeralContainers[0] \"dbg\"".to_owned()
                ),
            ]
        );
        assert!(images_of("Pod", &json!({ "apiVersion": "v1", "kind": "Pod" })).unwrap().is_empty());
    }

    #[test]
    fn image_volumes_are_images_too() {
        let pod = json!({ "kind": "Pod", "spec": {
            "containers": [{ "name": "web", "image": SIGNED }],
            "volumes": [
                { "name": "config", "configMap": { "name": "c" } },
                { "name": "models", "image": { "reference": "registry.example.com/prod/models:v3" } },
            ],
        }});
        let fields = images_of("Pod", &pod).unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(
            (fields[1].pointer.as_str(), fields[1].image.as_str(), fields[1].section, fields[1].container.as_str()),
            ("/spec/volumes/1/image/reference", "registry.example.com/prod/models:v3", "volumes", "models")
        );
    }

    #[test]
    fn images_of_refuses_malformed_and_unknown_objects() {
        let error =
            images_of("Pod", &json!({ "kind": "Pod", "spec": { "containers": [{ "name": "a", "image": 7 }] } }))
                .unwrap_err();
        assert!(matches!(&error, AdmissionError::Object { kind, .. } if kind == "Pod"), "{error}");
        assert!(matches!(images_of("Pod", &json!("nginx")), Err(AdmissionError::Object { .. })));
        assert!(matches!(
            images_of("Deployment", &json!({ "apiVersion": "v1", "kind": "Pod" })),
            Err(AdmissionError::Object { .. })
        ));
        assert!(matches!(images_of("Secret", &json!({})), Err(AdmissionError::UnsupportedKind(_))));
    }

    #[test]
    fn pinning_keeps_the_reference_and_checks_a_written_digest() {
        let a = digest('a');
        assert_eq!(pin("nginx:1.27", &a), Ok(Some(format!("nginx:1.27@{a}"))));
        assert_eq!(pin("nginx", &a), Ok(Some(format!("nginx@{a}"))));
        assert_eq!(pin("localhost:5000/app:v1", &a), Ok(Some(format!("localhost:5000/app:v1@{a}"))));
        assert_eq!(pin(&format!("nginx@{a}"), &a), Ok(None));
        assert_eq!(pin(&format!("nginx:1.27@{a}"), &a), Ok(None));
        assert!(pin(&format!("nginx@{}", digest('b')), &a).unwrap_err().to_string().contains("pins sha256:bbbb"));
        assert!(pin("nginx", "sha256:ABC").is_err());
        assert!(pin("nginx", &digest('A')).is_err());
    }

    #[test]
    fn pointers_sort_by_index_as_numbers() {
        let mut pointers = ["/spec/containers/10/image", "/spec/initContainers/0/image", "/spec/containers/2/image"];
        pointers.sort_by_key(|p| pointer_order(p));
        assert_eq!(pointers, ["/spec/containers/2/image", "/spec/containers/10/image", "/spec/initContainers/0/image"]);
        let op = replace("/spec/containers/0/image", "x@sha256:1");
        assert_eq!(
            serde_json::to_value(&op).unwrap(),
            json!({ "op": "replace", "path": "/spec/containers/0/image", "value": "x@sha256:1" })
        );
    }

    #[test]
    fn messages_and_warnings_are_bounded() {
        let long = bound_warnings(vec!["é".repeat(300)]);
        assert!(long[0].len() <= WARNING_LIMIT && long[0].ends_with('…'), "{long:?}");
        let denial = |n: usize| Denial { subject: format!("image \"i{n}\""), locations: vec![], why: "x".repeat(2000) };
        let message = deny_message(&(0..10).map(denial).collect::<Vec<_>>());
        assert!(message.len() <= MESSAGE_LIMIT, "{}", message.len());
        assert!(message.ends_with("more denied images"), "{message}");
        let many: Vec<String> = (0..50).map(|n| format!("w{n}")).chain(["w1".to_owned()]).collect();
        let bounded = bound_warnings(many);
        assert_eq!(bounded.len(), MAX_WARNINGS);
        assert_eq!(bounded.last().unwrap(), "… and 36 more warnings");
    }

    #[tokio::test]
    async fn distinct_images_are_decided_side_by_side() {
        /// Each decision waits for the other: decided one after the other, neither finishes.
        struct Rendezvous(tokio::sync::Barrier);
        #[async_trait::async_trait]
        impl ImageDecider for Rendezvous {
            async fn decide(&self, _: &str, _: Operation, _: bool) -> Result<Decision, PolicyError> {
                self.0.wait().await;
                Ok(allowed(&digest('a')))
            }
        }
        let decider = Rendezvous(tokio::sync::Barrier::new(2));
        let object = pod(vec![container("a", "a:1"), container("b", "b:1")], vec![], vec![]);
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            review(&review_of(("", "v1", "Pod"), "CREATE", Some(object), None), false, &decider),
        )
        .await
        .expect("decisions run side by side")
        .unwrap();
        assert_eq!(answer["response"]["allowed"], true, "{answer:#}");
    }

    /// Allows every image but `hang`, which never gets a decision; counts decisions in flight.
    #[derive(Default)]
    struct Slow {
        in_flight: std::sync::atomic::AtomicUsize,
        most_in_flight: std::sync::atomic::AtomicUsize,
    }

    #[async_trait::async_trait]
    impl ImageDecider for Slow {
        async fn decide(&self, image: &str, _: Operation, _: bool) -> Result<Decision, PolicyError> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.in_flight.fetch_add(1, SeqCst) + 1;
            self.most_in_flight.fetch_max(now, SeqCst);
            if image == "hang" {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.in_flight.fetch_sub(1, SeqCst);
            Ok(allowed(&digest('a')))
        }
    }

    #[tokio::test]
    async fn decisions_run_sixteen_at_a_time_and_late_ones_deny() {
        let names: Vec<String> = (0..40).map(|n| format!("img{n}")).collect();
        let images: Vec<&str> = names.iter().map(String::as_str).collect();
        let slow = Slow::default();
        let far = tokio::time::Instant::now() + DECISION_BUDGET;
        let outcomes = decide_all(&slow, &images, false, far).await;
        assert!(outcomes.iter().all(|o| matches!(o, Outcome::Decided(d) if d.allowed)));
        assert_eq!(slow.most_in_flight.load(std::sync::atomic::Ordering::SeqCst), CONCURRENCY);

        // The second group never finishes: it and the third are late, the first stands.
        let mut images = images;
        images[CONCURRENCY + 1] = "hang";
        let soon = tokio::time::Instant::now() + Duration::from_millis(200);
        let outcomes = decide_all(&Slow::default(), &images, false, soon).await;
        assert_eq!(outcomes.len(), images.len());
        assert!(outcomes[..CONCURRENCY].iter().all(|o| matches!(o, Outcome::Decided(_))));
        assert!(outcomes[CONCURRENCY..].iter().all(|o| matches!(o, Outcome::Late)));
    }

    #[tokio::test]
    async fn finalizer_removal_of_an_object_being_deleted_is_not_decided() {
        let table = Table::default();
        let old = pod(vec![container("web", "revoked:1")], vec![], vec![]);
        let mut new = old.clone();
        new["metadata"]["deletionTimestamp"] = serde_json::to_value(Time(Default::default())).unwrap();
        let body = review_of(("", "v1", "Pod"), "UPDATE", Some(new.clone()), Some(old));
        let answer = review(&body, true, &table).await.unwrap();
        assert_eq!(answer["response"]["allowed"], true, "{answer:#}");
        assert!(table.calls.lock().unwrap().is_empty());

        // Changing an image while being deleted is decided as usual.
        let mut changed = new.clone();
        changed["spec"]["containers"][0]["image"] = json!("evil:1");
        let body = review_of(("", "v1", "Pod"), "UPDATE", Some(changed), Some(new));
        let answer = review(&body, true, &table).await.unwrap();
        assert_eq!(answer["response"]["allowed"], false, "{answer:#}");
    }

    #[tokio::test]
    async fn other_versions_of_a_checked_kind_are_denied() {
        let table = Table::default();
        let object = json!({ "apiVersion": "batch/v1beta1", "kind": "CronJob" });
        let answer = review(&review_of(("batch", "v1beta1", "CronJob"), "CREATE", Some(object), None), true, &table)
            .await
            .unwrap();
        assert_eq!(answer["response"]["allowed"], false);
        assert_eq!(answer["response"]["uid"], "u-1");
        assert!(answer["response"]["status"]["message"].as_str().unwrap().contains("batch/v1 CronJob"), "{answer:#}");
    }

    #[tokio::test]
    async fn status_and_other_subresources_are_not_decided() {
        let table = Table::default();
        let object = pod(vec![container("web", "unsigned:1")], vec![], vec![]);
        let mut body: Value =
            serde_json::from_slice(&review_of(("", "v1", "Pod"), "UPDATE", Some(object), None)).unwrap();
        body["request"]["subResource"] = json!("status");
        let answer = review(&serde_json::to_vec(&body).unwrap(), true, &table).await.unwrap();
        assert_eq!(answer["response"]["allowed"], true);
        assert!(table.calls.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn ephemeral_containers_of_another_kind_are_denied() {
        let table = Table::default();
        let object = json!({ "apiVersion": "v1", "kind": "EphemeralContainers", "ephemeralContainers": [] });
        let mut body: Value =
            serde_json::from_slice(&review_of(("", "v1", "EphemeralContainers"), "UPDATE", Some(object), None))
                .unwrap();
        body["request"]["subResource"] = json!("ephemeralcontainers");
        let answer = review(&serde_json::to_vec(&body).unwrap(), true, &table).await.unwrap();
        assert_eq!(answer["response"]["allowed"], false, "{answer:#}");
    }

    #[tokio::test]
    async fn too_many_distinct_images_deny_without_decisions() {
        let table = Table::default();
        let containers = (0..=MAX_DISTINCT_IMAGES).map(|n| container(&format!("c{n}"), &format!("img{n}:1"))).collect();
        let object = pod(containers, vec![], vec![]);
        let answer = review(&review_of(("", "v1", "Pod"), "CREATE", Some(object), None), true, &table).await.unwrap();
        assert_eq!(answer["response"]["allowed"], false);
        assert!(answer["response"]["status"]["message"].as_str().unwrap().contains("distinct images"));
        assert!(table.calls.lock().unwrap().is_empty());
    }

    #[test]
    fn the_review_future_is_send() {
        fn send<T: Send>(_: T) {}
        let table = Table::default();
        send(review(b"{}", true, &table));
    }
}
