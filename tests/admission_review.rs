//! Kubernetes admission (DESIGN §6 "Admission", attack catalogue §7 KA-01..KA-11) through
//! `policy::admission::review`, with a table-driven fake decider that records its calls.
//!
//! Workload objects are not typed by hand: Deployments, Jobs, CronJobs and ConfigMaps come
//! from `kubectl create ... --dry-run=client -o json` (offline), Pods are made from the
//! kubectl Deployment's pod template (`kubectl run` needs a cluster for discovery), and
//! ReplicaSets, StatefulSets, DaemonSets and ReplicationControllers are built from the
//! k8s-openapi types around that template. Extra containers are added to the kubectl JSON.
//! Without kubectl on PATH the tests are skipped, unless `NOTARIUS_REQUIRE_EXTERNAL=1`.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod external;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Mutex;

use base64::Engine as _;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, ReplicaSet, ReplicaSetSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController, ReplicationControllerSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use notarius::policy::admission::{AdmissionError, ImageField, MESSAGE_LIMIT, images_of, review};
use notarius::policy::reference::{ImageReference, ReferenceError};
use notarius::policy::{Decision, ImageDecider, Operation, PolicyError};
use serde_json::{Value, json};

/// `kubectl <args> --dry-run=client -o json`, parsed; None (test skipped) without kubectl.
fn kubectl(args: &[&str]) -> Option<Value> {
    let program = external::require("kubectl")?;
    let output = Command::new(&program)
        .args(args)
        .args(["--dry-run=client", "-o", "json"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program:?}: {e}"));
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).expect("kubectl prints JSON"))
}

fn deployment(image: &str) -> Option<Value> {
    kubectl(&["create", "deployment", "web", &format!("--image={image}")])
}

/// The pod template of a kubectl Deployment running `image` (container "web").
fn template(image: &str) -> Option<PodTemplateSpec> {
    let deployment = deployment(image)?;
    Some(serde_json::from_value(deployment["spec"]["template"].clone()).expect("a pod template"))
}

/// A Pod made from the kubectl Deployment's pod template.
fn pod(image: &str) -> Option<Value> {
    let template = deployment(image)?["spec"]["template"].clone();
    let mut metadata = template["metadata"].clone();
    metadata["name"] = json!("web");
    Some(json!({ "apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"] }))
}

/// Adds a container to the pod spec at `spec` (a JSON pointer) of `object`, in `section`.
fn add_container(object: &mut Value, spec: &str, section: &str, name: &str, image: &str) {
    let spec = object.pointer_mut(spec).expect("the pod spec");
    let list = spec.as_object_mut().expect("an object").entry(section).or_insert_with(|| json!([]));
    list.as_array_mut().expect("a list").push(json!({ "name": name, "image": image }));
}

// --- reviews ---------------------------------------------------------------------------------

struct Request<'a> {
    group: &'a str,
    version: &'a str,
    kind: &'a str,
    resource: &'a str,
    sub_resource: Option<&'a str>,
    operation: &'a str,
    object: Option<Value>,
    old_object: Option<Value>,
    dry_run: bool,
}

impl<'a> Request<'a> {
    fn create(group: &'a str, kind: &'a str, resource: &'a str, object: Value) -> Self {
        Request {
            group,
            version: "v1",
            kind,
            resource,
            sub_resource: None,
            operation: "CREATE",
            object: Some(object),
            old_object: None,
            dry_run: false,
        }
    }

    fn review(&self, uid: &str) -> Value {
        let mut request = json!({
            "uid": uid,
            "kind": { "group": self.group, "version": self.version, "kind": self.kind },
            "resource": { "group": self.group, "version": self.version, "resource": self.resource },
            "name": "web",
            "namespace": "prod",
            "operation": self.operation,
            "userInfo": { "username": "alice", "groups": ["system:authenticated"] },
            "object": self.object,
            "oldObject": self.old_object,
            "dryRun": self.dry_run,
        });
        if let Some(sub_resource) = self.sub_resource {
            request["subResource"] = json!(sub_resource);
        }
        json!({ "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request })
    }
}

const UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";
const GOOD: &str = "registry.example.com/prod/web:v1";
const OTHER: &str = "registry.example.com/prod/sidecar:v2";
const UNSIGNED: &str = "registry.example.com/prod/unsigned:v1";

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn allowed(digest: &str) -> Decision {
    Decision {
        allowed: true,
        digest: Some(digest.to_owned()),
        rule: Some("production needs CI".to_owned()),
        signers: Vec::new(),
        reasons: vec!["signed by team ci".to_owned()],
        warnings: Vec::new(),
        rules: Vec::new(),
    }
}

/// Decides from a table; an image not in it is denied as unsigned. Records every call.
#[derive(Default)]
struct FakeDecider {
    /// A reference error stands for a reference the decider cannot read; `failing` images
    /// make the decider fail otherwise (as a store failure would).
    table: HashMap<String, Result<Decision, ReferenceError>>,
    failing: Vec<String>,
    calls: Mutex<Vec<(String, Operation, bool)>>,
}

impl FakeDecider {
    fn new() -> Self {
        FakeDecider::default()
            .with(GOOD, Ok(allowed(&digest('a'))))
            .with(OTHER, Ok(allowed(&digest('b'))))
            .with(&format!("{GOOD}@{}", digest('a')), Ok(allowed(&digest('a'))))
    }

    fn with(mut self, image: &str, outcome: Result<Decision, ReferenceError>) -> Self {
        self.table.insert(image.to_owned(), outcome);
        self
    }

    fn failing(mut self, image: &str) -> Self {
        self.failing.push(image.to_owned());
        self
    }

    fn calls(&self) -> Vec<(String, Operation, bool)> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl ImageDecider for FakeDecider {
    async fn decide(&self, image: &str, operation: Operation, dry_run: bool) -> Result<Decision, PolicyError> {
        self.calls.lock().unwrap().push((image.to_owned(), operation, dry_run));
        tokio::task::yield_now().await;
        if self.failing.iter().any(|failing| failing == image) {
            let source = Box::new(std::io::Error::other("the database is gone"));
            return Err(PolicyError::Storage { what: format!("the trust data of {image}"), source });
        }
        let outcome = self.table.get(image).cloned();
        Ok(outcome.unwrap_or_else(|| Ok(Decision::deny(format!("no signed target for {image}"))))?)
    }
}

async fn respond(review_json: &Value, mutate: bool, decider: &FakeDecider) -> Value {
    let body = serde_json::to_vec(review_json).unwrap();
    let answer = review(&body, mutate, decider).await.unwrap_or_else(|e| panic!("review failed: {e}"));
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{answer:#}");
    assert_eq!(answer["kind"], "AdmissionReview", "{answer:#}");
    assert!(answer.get("request").is_none(), "{answer:#}");
    answer["response"].clone()
}

/// The decoded JSONPatch of a response, or None.
fn patch_of(response: &Value) -> Option<Value> {
    let encoded = response.get("patch")?.as_str().expect("patch is base64 text");
    assert_eq!(response["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).expect("base64");
    Some(serde_json::from_slice(&bytes).expect("patch is JSON"))
}

fn pointers(fields: &[ImageField]) -> Vec<(&str, &str, &str, &str)> {
    fields.iter().map(|f| (f.pointer.as_str(), f.image.as_str(), f.container.as_str(), f.section)).collect()
}

fn message(response: &Value) -> &str {
    response["status"]["message"].as_str().unwrap_or_default()
}

// --- kinds and pointers (KA-09) ------------------------------------------------------------

#[tokio::test]
async fn deployment_images_have_template_pointers() {
    let Some(mut object) = deployment(GOOD) else { return };
    add_container(&mut object, "/spec/template/spec", "containers", "sidecar", OTHER);
    add_container(&mut object, "/spec/template/spec", "initContainers", "setup", OTHER);
    let fields = images_of("Deployment", &object).unwrap();
    assert_eq!(
        pointers(&fields),
        [
            ("/spec/template/spec/containers/0/image", GOOD, "web", "containers"),
            ("/spec/template/spec/containers/1/image", OTHER, "sidecar", "containers"),
            ("/spec/template/spec/initContainers/0/image", OTHER, "setup", "initContainers"),
        ]
    );

    let decider = FakeDecider::new();
    let response =
        respond(&Request::create("apps", "Deployment", "deployments", object).review(UID), false, &decider).await;
    assert_eq!(response["allowed"], true, "{response:#}");
    assert_eq!(response["uid"], UID);
    assert!(response.get("patch").is_none(), "validate never patches: {response:#}");
    let mut calls = decider.calls();
    calls.sort();
    assert_eq!(calls, [(OTHER.to_owned(), Operation::Run, false), (GOOD.to_owned(), Operation::Run, false)]);
}

#[tokio::test]
async fn job_and_cronjob_images_are_found() {
    let Some(job) = kubectl(&["create", "job", "nightly", &format!("--image={GOOD}")]) else { return };
    let Some(cronjob) = kubectl(&["create", "cronjob", "nightly", &format!("--image={GOOD}"), "--schedule=* * * * *"])
    else {
        return;
    };
    assert_eq!(
        pointers(&images_of("Job", &job).unwrap()),
        [("/spec/template/spec/containers/0/image", GOOD, "nightly", "containers")]
    );
    assert_eq!(
        pointers(&images_of("CronJob", &cronjob).unwrap()),
        [("/spec/jobTemplate/spec/template/spec/containers/0/image", GOOD, "nightly", "containers")]
    );

    let decider = FakeDecider::new();
    for (kind, resource, object) in [("Job", "jobs", job), ("CronJob", "cronjobs", cronjob)] {
        let response = respond(&Request::create("batch", kind, resource, object).review(UID), true, &decider).await;
        assert_eq!(response["allowed"], true, "{kind}: {response:#}");
        let pointer = if kind == "Job" {
            "/spec/template/spec/containers/0/image"
        } else {
            "/spec/jobTemplate/spec/template/spec/containers/0/image"
        };
        assert_eq!(
            patch_of(&response),
            Some(json!([{ "op": "replace", "path": pointer, "value": format!("{GOOD}@{}", digest('a')) }])),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn pod_images_are_found() {
    let Some(mut object) = pod(GOOD) else { return };
    add_container(&mut object, "/spec", "initContainers", "setup", OTHER);
    add_container(&mut object, "/spec", "ephemeralContainers", "debugger", OTHER);
    assert_eq!(
        pointers(&images_of("Pod", &object).unwrap()),
        [
            ("/spec/containers/0/image", GOOD, "web", "containers"),
            ("/spec/initContainers/0/image", OTHER, "setup", "initContainers"),
            ("/spec/ephemeralContainers/0/image", OTHER, "debugger", "ephemeralContainers"),
        ]
    );
    let decider = FakeDecider::new();
    let response = respond(&Request::create("", "Pod", "pods", object).review(UID), false, &decider).await;
    assert_eq!(response["allowed"], true, "{response:#}");
}

#[tokio::test]
async fn typed_workloads_images_are_found() {
    let Some(template) = template(GOOD) else { return };
    let selector =
        LabelSelector { match_labels: template.metadata.as_ref().and_then(|m| m.labels.clone()), ..Default::default() };
    let metadata = ObjectMeta { name: Some("web".to_owned()), ..Default::default() };
    let objects = [
        (
            "apps",
            "ReplicaSet",
            "replicasets",
            serde_json::to_value(ReplicaSet {
                metadata: metadata.clone(),
                spec: Some(ReplicaSetSpec {
                    selector: selector.clone(),
                    template: Some(template.clone()),
                    ..Default::default()
                }),
                status: None,
            }),
        ),
        (
            "apps",
            "StatefulSet",
            "statefulsets",
            serde_json::to_value(StatefulSet {
                metadata: metadata.clone(),
                spec: Some(StatefulSetSpec {
                    selector: selector.clone(),
                    template: template.clone(),
                    ..Default::default()
                }),
                status: None,
            }),
        ),
        (
            "apps",
            "DaemonSet",
            "daemonsets",
            serde_json::to_value(DaemonSet {
                metadata: metadata.clone(),
                spec: Some(DaemonSetSpec { selector, template: template.clone(), ..Default::default() }),
                status: None,
            }),
        ),
        (
            "",
            "ReplicationController",
            "replicationcontrollers",
            serde_json::to_value(ReplicationController {
                metadata,
                spec: Some(ReplicationControllerSpec { template: Some(template), ..Default::default() }),
                status: None,
            }),
        ),
    ];
    let decider = FakeDecider::new();
    for (group, kind, resource, object) in objects {
        let mut object = object.unwrap();
        add_container(&mut object, "/spec/template/spec", "initContainers", "setup", UNSIGNED);
        assert_eq!(
            pointers(&images_of(kind, &object).unwrap()),
            [
                ("/spec/template/spec/containers/0/image", GOOD, "web", "containers"),
                ("/spec/template/spec/initContainers/0/image", UNSIGNED, "setup", "initContainers"),
            ],
            "{kind}"
        );
        let response = respond(&Request::create(group, kind, resource, object).review(UID), true, &decider).await;
        assert_eq!(response["allowed"], false, "{kind}: {response:#}");
        assert!(message(&response).contains(&format!("image \"{UNSIGNED}\" (initContainers[0] \"setup\")")), "{kind}");
        assert!(patch_of(&response).is_none(), "{kind}: no patch on a denial");
    }
}

#[tokio::test]
async fn other_kinds_are_allowed_untouched() {
    let Some(config_map) =
        kubectl(&["create", "configmap", "settings", "--from-literal=image=registry.example.com/x:1"])
    else {
        return;
    };
    let decider = FakeDecider::new();
    let response =
        respond(&Request::create("", "ConfigMap", "configmaps", config_map).review(UID), true, &decider).await;
    assert_eq!(response["allowed"], true, "{response:#}");
    assert_eq!(response["uid"], UID);
    assert!(response.get("patch").is_none() && response.get("warnings").is_none(), "{response:#}");
    assert!(decider.calls().is_empty());
    assert!(matches!(images_of("ConfigMap", &json!({})), Err(AdmissionError::UnsupportedKind(_))));
}

// --- denials (KA-04, KA-06) ----------------------------------------------------------------

#[tokio::test]
async fn one_unsigned_init_container_denies_the_deployment() {
    let Some(mut object) = deployment(GOOD) else { return };
    add_container(&mut object, "/spec/template/spec", "containers", "sidecar", OTHER);
    add_container(&mut object, "/spec/template/spec", "initContainers", "setup", UNSIGNED);
    let decider = FakeDecider::new();
    let response =
        respond(&Request::create("apps", "Deployment", "deployments", object).review(UID), true, &decider).await;
    assert_eq!(response["allowed"], false, "{response:#}");
    assert_eq!(response["uid"], UID);
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(
        message(&response),
        format!("image \"{UNSIGNED}\" (initContainers[0] \"setup\"): denied: no signed target for {UNSIGNED}")
    );
    assert!(patch_of(&response).is_none(), "no patch on a denial: {response:#}");
}

#[tokio::test]
async fn each_denied_image_is_named() {
    let Some(mut object) = pod(UNSIGNED) else { return };
    add_container(&mut object, "/spec", "containers", "good", GOOD);
    add_container(&mut object, "/spec", "initContainers", "setup", "registry.example.com/prod/other-unsigned:v3");
    let decider = FakeDecider::new();
    let response = respond(&Request::create("", "Pod", "pods", object).review(UID), false, &decider).await;
    assert_eq!(response["allowed"], false);
    let lines: Vec<&str> = message(&response).lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with(&format!("image \"{UNSIGNED}\" (containers[0] \"unsigned\"): denied: ")), "{lines:?}");
    assert!(
        lines[1].starts_with("image \"registry.example.com/prod/other-unsigned:v3\" (initContainers[0] \"setup\")")
    );
    assert!(!message(&response).contains(GOOD));
}

#[tokio::test]
async fn ephemeral_containers_subresource_checks_the_ephemeral_containers() {
    let Some(mut object) = pod(GOOD) else { return };
    add_container(&mut object, "/spec", "ephemeralContainers", "debugger", UNSIGNED);
    let decider = FakeDecider::new();
    let mut request = Request::create("", "Pod", "pods", object.clone());
    request.operation = "UPDATE";
    request.sub_resource = Some("ephemeralcontainers");
    request.old_object = pod(GOOD);
    let response = respond(&request.review(UID), true, &decider).await;
    assert_eq!(response["allowed"], false, "{response:#}");
    assert!(message(&response).starts_with(&format!("image \"{UNSIGNED}\" (ephemeralContainers[0] \"debugger\")")));
    assert_eq!(decider.calls().len(), 1, "only the ephemeral containers are decided: {:?}", decider.calls());

    // A signed debugger is pinned; the pod's own containers are left to the pods webhook
    // (the API server refuses other changes through this subresource).
    object["spec"]["ephemeralContainers"][0]["image"] = json!(OTHER);
    request.object = Some(object);
    let response = respond(&request.review(UID), true, &decider).await;
    assert_eq!(response["allowed"], true, "{response:#}");
    assert_eq!(
        patch_of(&response),
        Some(json!([{
            "op": "replace",
            "path": "/spec/ephemeralContainers/0/image",
            "value": format!("{OTHER}@{}", digest('b')),
        }]))
    );
}

#[tokio::test]
async fn an_unreadable_reference_denies_with_the_deciders_message() {
    let Some(object) = pod("NGINX") else { return };
    let error = ImageReference::parse("NGINX").unwrap_err();
    let decider = FakeDecider::new().with("NGINX", Err(error.clone()));
    let response = respond(&Request::create("", "Pod", "pods", object).review(UID), true, &decider).await;
    assert_eq!(response["allowed"], false);
    assert_eq!(
        message(&response),
        format!("image \"NGINX\" (containers[0] \"NGINX\"): invalid image reference: {error}")
    );
    assert!(message(&response).ends_with("must be lower case"), "{response:#}");
}

#[tokio::test]
async fn a_decider_that_fails_denies_its_image_and_says_why() {
    let Some(object) = pod(GOOD) else { return };
    let decider = FakeDecider::new().failing(GOOD);
    let response = respond(&Request::create("", "Pod", "pods", object).review(UID), true, &decider).await;
    assert_eq!(response["allowed"], false);
    let said = message(&response);
    assert!(said.starts_with(&format!("image \"{GOOD}\" (containers[0] ")), "{said}");
    assert!(said.ends_with(&format!("): no decision: the trust data of {GOOD} could not be read")), "{said}");
    assert!(patch_of(&response).is_none(), "{response:#}");
}

// --- review envelope (KA-07) ---------------------------------------------------------------

#[tokio::test]
async fn uid_is_echoed_and_dry_run_reaches_the_decider() {
    let Some(object) = deployment(GOOD) else { return };
    let mut request = Request::create("apps", "Deployment", "deployments", object);
    let decider = FakeDecider::new();
    let plain = respond(&request.review("uid-1"), true, &decider).await;
    request.dry_run = true;
    let dry = respond(&request.review("uid-2"), true, &decider).await;
    assert_eq!(plain["uid"], "uid-1");
    assert_eq!(dry["uid"], "uid-2");
    let mut without_uid = dry.clone();
    without_uid["uid"] = plain["uid"].clone();
    assert_eq!(without_uid, plain, "a dry run answers the same");
    assert_eq!(decider.calls(), [(GOOD.to_owned(), Operation::Run, false), (GOOD.to_owned(), Operation::Run, true)]);
}

#[tokio::test]
async fn warnings_surface_with_their_image() {
    let Some(object) = deployment(GOOD) else { return };
    let mut decision = allowed(&digest('a'));
    decision.warnings = vec!["rule \"two signers\" (warn): 1 of 2 signers".to_owned()];
    let decider = FakeDecider::new().with(GOOD, Ok(decision));
    let response =
        respond(&Request::create("apps", "Deployment", "deployments", object).review(UID), false, &decider).await;
    assert_eq!(response["allowed"], true);
    assert_eq!(response["warnings"], json!([format!("image \"{GOOD}\": rule \"two signers\" (warn): 1 of 2 signers")]));
}

#[tokio::test]
async fn malformed_reviews_are_errors() {
    let Some(object) = deployment(GOOD) else { return };
    let good = Request::create("apps", "Deployment", "deployments", object.clone()).review(UID);
    let decider = FakeDecider::new();
    let attempt = |value: Value| {
        let decider = &decider;
        async move { review(&serde_json::to_vec(&value).unwrap(), false, decider).await }
    };

    assert!(matches!(review(b"{not json", false, &decider).await, Err(AdmissionError::NotJson(_))));
    let mut v1beta1 = good.clone();
    v1beta1["apiVersion"] = json!("admission.k8s.io/v1beta1");
    assert!(matches!(attempt(v1beta1).await, Err(AdmissionError::WrongType { .. })));
    let mut wrong_kind = good.clone();
    wrong_kind["kind"] = json!("Deployment");
    assert!(matches!(attempt(wrong_kind).await, Err(AdmissionError::WrongType { .. })));
    let mut no_request = good.clone();
    no_request.as_object_mut().unwrap().remove("request");
    assert!(matches!(attempt(no_request).await, Err(AdmissionError::NoRequest)));
    let mut no_object = good.clone();
    no_object["request"].as_object_mut().unwrap().remove("object");
    assert!(matches!(attempt(no_object).await, Err(AdmissionError::MissingObject { operation: "CREATE" })));
    let mut no_uid = good.clone();
    no_uid["request"].as_object_mut().unwrap().remove("uid");
    assert!(matches!(attempt(no_uid).await, Err(AdmissionError::Request(_))));
    let mut empty_uid = good.clone();
    empty_uid["request"]["uid"] = json!("");
    assert!(matches!(attempt(empty_uid).await, Err(AdmissionError::NoUid)));
    let mut bad_containers = good.clone();
    bad_containers["request"]["object"]["spec"]["template"]["spec"]["containers"] = json!("nginx");
    let error = attempt(bad_containers).await.unwrap_err();
    assert!(matches!(error, AdmissionError::Object { .. }), "{error}");
    let mut not_a_deployment = good.clone();
    not_a_deployment["request"]["object"]["kind"] = json!("Pod");
    assert!(matches!(attempt(not_a_deployment).await, Err(AdmissionError::Object { .. })));
    assert!(decider.calls().is_empty());
}

#[tokio::test]
async fn delete_is_allowed_without_a_decision() {
    let Some(object) = deployment(UNSIGNED) else { return };
    let mut request = Request::create("apps", "Deployment", "deployments", object.clone());
    request.operation = "DELETE";
    request.object = None;
    request.old_object = Some(object);
    let decider = FakeDecider::new();
    let response = respond(&request.review(UID), true, &decider).await;
    assert_eq!(response["allowed"], true, "{response:#}");
    assert_eq!(response["uid"], UID);
    assert!(decider.calls().is_empty());
}

// --- mutation (KA-01, KA-02, KA-10, lesson 6) ----------------------------------------------

#[tokio::test]
async fn mutate_pins_tags_to_the_signed_digest() {
    let Some(mut object) = deployment(GOOD) else { return };
    add_container(&mut object, "/spec/template/spec", "containers", "sidecar", OTHER);
    add_container(&mut object, "/spec/template/spec", "initContainers", "setup", GOOD);
    let decider = FakeDecider::new();
    let review_json = Request::create("apps", "Deployment", "deployments", object.clone()).review(UID);
    let response = respond(&review_json, true, &decider).await;
    assert_eq!(response["allowed"], true, "{response:#}");
    let patch = patch_of(&response).expect("a patch");
    assert_eq!(
        patch,
        json!([
            { "op": "replace", "path": "/spec/template/spec/containers/0/image", "value": format!("{GOOD}@{}", digest('a')) },
            { "op": "replace", "path": "/spec/template/spec/containers/1/image", "value": format!("{OTHER}@{}", digest('b')) },
            { "op": "replace", "path": "/spec/template/spec/initContainers/0/image", "value": format!("{GOOD}@{}", digest('a')) },
        ])
    );
    assert_eq!(decider.calls().len(), 2, "GOOD is decided once: {:?}", decider.calls());

    // Deterministic: the same review gives the same bytes.
    assert_eq!(respond(&review_json, true, &decider).await, response);

    // Idempotent: reinvoked on its own output, the webhook has nothing more to patch.
    let patch: json_patch::Patch = serde_json::from_value(patch).unwrap();
    json_patch::patch(&mut object, &patch).unwrap();
    let decider = FakeDecider::new().with(&format!("{OTHER}@{}", digest('b')), Ok(allowed(&digest('b'))));
    let again =
        respond(&Request::create("apps", "Deployment", "deployments", object).review(UID), true, &decider).await;
    assert_eq!(again["allowed"], true, "{again:#}");
    assert!(again.get("patch").is_none(), "{again:#}");

    // The validate endpoint never patches.
    let validated = respond(&review_json, false, &FakeDecider::new()).await;
    assert_eq!(validated["allowed"], true);
    assert!(validated.get("patch").is_none() && validated.get("patchType").is_none(), "{validated:#}");
}

#[tokio::test]
async fn a_reference_pinned_to_the_signed_digest_is_not_patched() {
    let pinned = format!("{GOOD}@{}", digest('a'));
    let Some(object) = deployment(&pinned) else { return };
    let decider = FakeDecider::new();
    let response =
        respond(&Request::create("apps", "Deployment", "deployments", object).review(UID), true, &decider).await;
    assert_eq!(response["allowed"], true, "{response:#}");
    assert!(response.get("patch").is_none(), "{response:#}");
}

#[tokio::test]
async fn a_reference_pinned_to_another_digest_is_denied() {
    let pinned = format!("{GOOD}@{}", digest('c'));
    let Some(object) = deployment(&pinned) else { return };
    // A decider that (wrongly) allows it with the tag's digest: the written digest is what runs.
    let decider = FakeDecider::new().with(&pinned, Ok(allowed(&digest('a'))));
    let response =
        respond(&Request::create("apps", "Deployment", "deployments", object).review(UID), true, &decider).await;
    assert_eq!(response["allowed"], false, "{response:#}");
    assert!(message(&response).contains(&format!("pins {}", digest('c'))), "{response:#}");
    assert!(response.get("patch").is_none());
}

// --- size (KA-11) --------------------------------------------------------------------------

#[tokio::test]
async fn a_thousand_identical_containers_are_decided_once() {
    let Some(mut object) = pod(GOOD) else { return };
    for index in 1..1000 {
        add_container(&mut object, "/spec", "containers", &format!("c{index}"), GOOD);
    }
    let decider = FakeDecider::new();
    let response = respond(&Request::create("", "Pod", "pods", object.clone()).review(UID), true, &decider).await;
    assert_eq!(response["allowed"], true);
    assert_eq!(decider.calls().len(), 1);
    let patch = patch_of(&response).unwrap();
    let ops = patch.as_array().unwrap();
    assert_eq!(ops.len(), 1000);
    assert_eq!(ops[2]["path"], "/spec/containers/2/image", "sorted by index, not as text");
    assert_eq!(ops[999]["path"], "/spec/containers/999/image");

    // Denied: one line for the image, three containers named, the rest counted.
    let decider = FakeDecider::new().with(GOOD, Ok(Decision::deny("not signed by team ci")));
    let response = respond(&Request::create("", "Pod", "pods", object).review(UID), true, &decider).await;
    assert_eq!(response["allowed"], false);
    assert_eq!(decider.calls().len(), 1);
    assert_eq!(
        message(&response),
        format!(
            "image \"{GOOD}\" (containers[0] \"web\", containers[1] \"c1\", containers[2] \"c2\" and 997 more): denied: not signed by team ci"
        )
    );
}

#[tokio::test]
async fn many_denied_images_keep_the_message_bounded() {
    let Some(mut object) = pod(&format!("registry.example.com/prod/{}:v0", "x".repeat(100))) else { return };
    for index in 1..200 {
        let image = format!("registry.example.com/prod/{}-{index}:v1", "x".repeat(100));
        add_container(&mut object, "/spec", "containers", &format!("c{index}"), &image);
    }
    let decider = FakeDecider::new();
    let response = respond(&Request::create("", "Pod", "pods", object).review(UID), false, &decider).await;
    assert_eq!(response["allowed"], false);
    assert_eq!(decider.calls().len(), 200);
    let text = message(&response);
    assert!(text.len() <= MESSAGE_LIMIT, "{} bytes", text.len());
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("… and ") && last.ends_with(" more denied images"), "{last}");
    let shown = text.lines().count() - 1;
    assert_eq!(last, format!("… and {} more denied images", 200 - shown));
}
