//! The packaging in deploy/, checked without a cluster, a Docker engine or systemd running:
//!
//! - Every YAML document in deploy/kubernetes/ is read into its k8s-openapi type, chosen by
//!   `apiVersion` and `kind`, written out again and compared with the YAML. Those types
//!   ignore keys they do not know, so a misspelt, misplaced or mistyped key shows up as a
//!   difference; an unknown kind fails. Then the objects are checked against each other
//!   (names, ports, mounts, Secrets), against the image (its user and paths), against the
//!   binary (`notarius serve --help`), against the docs (how the Secrets are made), and the
//!   webhooks against a running server: every resource their rules send reaches a real
//!   route that reads it.
//! - deploy/Dockerfile and deploy/notarius.service are read as text: what they copy exists,
//!   the commands and flags they run exist, the image runs as a numeric non-root user, the
//!   unit is sandboxed and waits longer than the server's shutdown grace. `systemd-analyze
//!   verify` runs on the unit when it is installed.
#![cfg(test)] // The whole crate is test code: clippy.toml's allow-*-in-tests apply to it.

mod test_app;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::Resource;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, Namespace, PersistentVolumeClaim, PodSpec, Secret, Service, ServiceAccount, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::de::DeserializeOwned;
use serde::{Deserialize as _, Serialize};
use serde_json::{Value, json};
use test_app::TestServer;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

// --- the binary ----------------------------------------------------------------------------

/// `notarius <args> --help`, run without the caller's NOTARIUS_* variables (clap prints the
/// values of set variables in the help).
fn help(args: &[&str]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_notarius"));
    command.args(args).arg("--help");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("NOTARIUS_") {
            command.env_remove(name);
        }
    }
    let output = command.output().expect("the notarius binary runs");
    assert!(
        output.status.success(),
        "notarius {} --help failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn serve_help() -> &'static str {
    static HELP: OnceLock<String> = OnceLock::new();
    HELP.get_or_init(|| help(&["serve"]))
}

/// Whether `help` lists `flag` (`--listen`, not the `--listen` inside `--listen-x`).
fn lists_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(at, _)| {
        let next = help[at + flag.len()..].chars().next();
        !matches!(next, Some(c) if c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// Every `--flag` of `args` (the words after `serve`) is a flag of `notarius serve`.
fn assert_serve_flags(args: &[&str], what: &str) {
    for word in args.iter().filter(|word| word.starts_with("--")) {
        let flag = word.split('=').next().unwrap_or(word);
        let listed = lists_flag(serve_help(), flag);
        assert!(listed, "{what}: {flag} is not a flag of `notarius serve`:\n{}", serve_help());
    }
}

/// The secrets of the configuration contract: no flag, a file key and a `NOTARIUS_*`
/// variable, each with a `_FILE` variant for mounted secrets.
const SECRET_SETTINGS: &[&str] = &["key_passphrase", "key_passphrase_old", "bootstrap_admin"];

/// Whether the crate's sources mention `word` (a setting the server reads).
fn sources_mention(word: &str) -> bool {
    fn walk(dir: &Path, word: &str) -> bool {
        std::fs::read_dir(dir).into_iter().flatten().flatten().any(|entry| {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, word)
            } else {
                path.extension().is_some_and(|e| e == "rs") && read(&path).contains(word)
            }
        })
    }
    walk(&repo().join("src"), word)
}

/// `name` is a variable of `notarius serve`. One name per setting: `NOTARIUS_DATA_DIR` is
/// the flag `--data-dir`; a secret has no flag but is one of the contract's secrets, which
/// the server reads, or its `_FILE` variant.
fn assert_server_variable(name: &str, what: &str) {
    let key = name
        .strip_prefix("NOTARIUS_")
        .unwrap_or_else(|| panic!("{what}: {name} is not a NOTARIUS_* variable"))
        .to_ascii_lowercase();
    let flag = format!("--{}", key.replace('_', "-"));
    if lists_flag(serve_help(), &flag) {
        return;
    }
    let secret = key.strip_suffix("_file").unwrap_or(&key);
    assert!(
        SECRET_SETTINGS.contains(&secret) && sources_mention(secret),
        "{what}: {name} is neither a setting of `notarius serve` ({flag}) nor one of its secrets"
    );
}

/// The server's shutdown grace: the default of `--shutdown-grace` in `serve --help`.
fn shutdown_grace() -> Duration {
    let help = serve_help();
    let at = help.find("--shutdown-grace").unwrap_or_else(|| panic!("serve --help has no --shutdown-grace:\n{help}"));
    let entry = &help[at..];
    let entry = &entry[..entry[2..].find("\n  -").map_or(entry.len(), |end| end + 2)];
    let default = entry
        .split("[default: ")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("--shutdown-grace shows no default: {entry}"));
    parse_seconds(default).unwrap_or_else(|| panic!("--shutdown-grace default {default:?}"))
}

/// `30`, `30s`, `2m`: a systemd or settings duration in whole seconds and minutes.
fn parse_seconds(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().ok()?;
    match unit {
        "" | "s" => Some(Duration::from_secs(n)),
        "m" | "min" => Some(Duration::from_secs(n * 60)),
        _ => None,
    }
}

// --- reading the manifests ------------------------------------------------------------------

/// Stands for the base64 of the webhooks' CA: the files cannot be applied as written.
const CA_BUNDLE_PLACEHOLDER: &str = "${CA_BUNDLE}";

fn kubernetes_dir() -> PathBuf {
    repo().join("deploy/kubernetes")
}

/// Every file under `dir`, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() { files.extend(files_under(&path)) } else { files.push(path) }
    }
    files.sort();
    files
}

/// One YAML document: where it is, and its content as JSON.
struct Document {
    place: String,
    value: Value,
}

/// The documents of every `*.yaml` under deploy/kubernetes/, with the CA placeholder
/// replaced by `ca_bundle` as the docs tell an operator to.
fn documents(ca_bundle: &str) -> Vec<Document> {
    let mut documents = Vec::new();
    for path in files_under(&kubernetes_dir()) {
        let name = path.strip_prefix(repo()).unwrap().display().to_string();
        assert!(
            path.extension().is_some_and(|e| e == "yaml"),
            "{name}: deploy/kubernetes/ holds only *.yaml manifests (kubectl would apply a .yml or .json too)"
        );
        let text = read(&path).replace(CA_BUNDLE_PLACEHOLDER, ca_bundle);
        for (index, document) in yaml_serde::Deserializer::from_str(&text).enumerate() {
            let place = format!("{name} document {}", index + 1);
            let value = Value::deserialize(document).unwrap_or_else(|e| panic!("{place}: not YAML: {e}"));
            assert!(value.is_object(), "{place}: an empty or non-object document");
            documents.push(Document { place, value });
        }
    }
    assert!(!documents.is_empty(), "no manifests in deploy/kubernetes/");
    documents
}

/// The first place where `written` (the YAML) and `typed` (the same after its type) differ.
fn difference(written: &Value, typed: &Value, path: &str) -> Option<String> {
    match (written, typed) {
        (Value::Object(w), Value::Object(t)) => {
            let keys: BTreeSet<&String> = w.keys().chain(t.keys()).collect();
            keys.into_iter().find_map(|key| {
                let at = format!("{path}/{key}");
                match (w.get(key), t.get(key)) {
                    (Some(Value::Null), None) => Some(format!("{at}: left empty (null), which the type drops")),
                    (Some(_), None) => Some(format!("{at}: the type does not know this key (misspelt or misplaced?)")),
                    (None, Some(value)) => Some(format!("{at}: the type adds {value}")),
                    (Some(w), Some(t)) => difference(w, t, &at),
                    (None, None) => None,
                }
            })
        }
        (Value::Array(w), Value::Array(t)) if w.len() == t.len() => {
            w.iter().zip(t).enumerate().find_map(|(i, (w, t))| difference(w, t, &format!("{path}/{i}")))
        }
        _ if written == typed => None,
        _ => Some(format!("{path}: the YAML says {written}, the type reads {typed}")),
    }
}

/// `document` read as `T`, which must give back exactly the YAML.
fn typed<T: Resource + DeserializeOwned + Serialize>(document: &Document) -> T {
    let value: T = serde_json::from_value(document.value.clone())
        .unwrap_or_else(|e| panic!("{}: not a valid {} {}: {e}", document.place, T::API_VERSION, T::KIND));
    let again = serde_json::to_value(&value).unwrap();
    if let Some(difference) = difference(&document.value, &again, "") {
        panic!("{}: {} {}: {difference}", document.place, T::API_VERSION, T::KIND);
    }
    value
}

/// The objects of deploy/kubernetes/, by kind.
#[derive(Default)]
struct Manifests {
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    config_maps: Vec<ConfigMap>,
    secrets: Vec<Secret>,
    claims: Vec<PersistentVolumeClaim>,
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    webhooks: Vec<Webhook>,
}

/// The webhooks of a Validating- or MutatingWebhookConfiguration, whose webhook types
/// differ but have the same fields.
macro_rules! webhooks {
    ($manifests:expr, $kind:expr, $configuration:expr, $mutating:expr) => {
        let name = $configuration.metadata.name.unwrap_or_default();
        for hook in $configuration.webhooks.unwrap_or_default() {
            $manifests.webhooks.push(Webhook {
                place: format!("{}/{name}: {}", $kind, hook.name),
                mutating: $mutating,
                admission_review_versions: hook.admission_review_versions,
                client_config: hook.client_config,
                failure_policy: hook.failure_policy,
                namespace_selector: hook.namespace_selector,
                object_selector: hook.object_selector,
                rules: hook.rules.unwrap_or_default(),
                side_effects: hook.side_effects,
                timeout_seconds: hook.timeout_seconds,
            });
        }
    };
}

/// A webhook of either configuration, with what the checks read.
struct Webhook {
    /// `ValidatingWebhookConfiguration/notarius: validate.notarius.local`.
    place: String,
    mutating: bool,
    admission_review_versions: Vec<String>,
    client_config: WebhookClientConfig,
    failure_policy: Option<String>,
    namespace_selector: Option<LabelSelector>,
    object_selector: Option<LabelSelector>,
    rules: Vec<RuleWithOperations>,
    side_effects: String,
    timeout_seconds: Option<i32>,
}

fn is<T: Resource>(api_version: &str, kind: &str) -> bool {
    api_version == T::API_VERSION && kind == T::KIND
}

fn load(ca_bundle: &str) -> Manifests {
    let mut manifests = Manifests::default();
    for document in documents(ca_bundle) {
        let api_version = document.value["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = document.value["kind"].as_str().unwrap_or_default().to_owned();
        if is::<Namespace>(&api_version, &kind) {
            manifests.namespaces.push(typed(&document));
        } else if is::<ServiceAccount>(&api_version, &kind) {
            manifests.service_accounts.push(typed(&document));
        } else if is::<ConfigMap>(&api_version, &kind) {
            manifests.config_maps.push(typed(&document));
        } else if is::<Secret>(&api_version, &kind) {
            manifests.secrets.push(typed(&document));
        } else if is::<PersistentVolumeClaim>(&api_version, &kind) {
            manifests.claims.push(typed(&document));
        } else if is::<Deployment>(&api_version, &kind) {
            manifests.deployments.push(typed(&document));
        } else if is::<Service>(&api_version, &kind) {
            manifests.services.push(typed(&document));
        } else if is::<ValidatingWebhookConfiguration>(&api_version, &kind) {
            let configuration: ValidatingWebhookConfiguration = typed(&document);
            webhooks!(manifests, kind, configuration, false);
        } else if is::<MutatingWebhookConfiguration>(&api_version, &kind) {
            let configuration: MutatingWebhookConfiguration = typed(&document);
            webhooks!(manifests, kind, configuration, true);
        } else {
            panic!(
                "{}: unknown kind {kind:?} of {api_version:?}: add its k8s-openapi type to this test",
                document.place
            );
        }
    }
    manifests
}

/// A valid caBundle for the placeholder: the base64 of a PEM certificate.
fn test_ca_bundle() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let certificate =
        rcgen::CertificateParams::new(vec!["notarius.notarius.svc".into()]).unwrap().self_signed(&key).unwrap();
    base64::engine::general_purpose::STANDARD.encode(certificate.pem())
}

fn manifests() -> &'static Manifests {
    static MANIFESTS: OnceLock<Manifests> = OnceLock::new();
    MANIFESTS.get_or_init(|| load(&test_ca_bundle()))
}

// --- what the objects say ---------------------------------------------------------------------

/// The one Deployment, its pod spec and its notarius container.
fn server() -> (&'static Deployment, &'static PodSpec, &'static Container) {
    let deployments = &manifests().deployments;
    assert_eq!(deployments.len(), 1, "one Deployment, notarius");
    let deployment = &deployments[0];
    let pod = deployment.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("a pod spec");
    assert_eq!(pod.containers.len(), 1, "one container");
    (deployment, pod, &pod.containers[0])
}

fn namespace() -> &'static str {
    let namespaces = &manifests().namespaces;
    assert_eq!(namespaces.len(), 1, "one Namespace");
    namespaces[0].metadata.name.as_deref().expect("a named namespace")
}

fn the_service() -> &'static Service {
    let services = &manifests().services;
    assert_eq!(services.len(), 1, "one Service");
    &services[0]
}

fn config_map(name: &str) -> &'static ConfigMap {
    manifests()
        .config_maps
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no ConfigMap {name} in deploy/kubernetes/"))
}

fn volume<'a>(pod: &'a PodSpec, name: &str) -> &'a Volume {
    pod.volumes.iter().flatten().find(|v| v.name == name).unwrap_or_else(|| panic!("no volume {name}"))
}

/// The container's mounts: mount path → (volume, subPath).
fn mounts(container: &Container) -> BTreeMap<&str, (&str, Option<&str>)> {
    container
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.mount_path.as_str(), (m.name.as_str(), m.sub_path.as_deref())))
        .collect()
}

/// The mount path of the volume `name`.
fn mount_of<'a>(container: &'a Container, name: &str) -> &'a str {
    let mounts: Vec<&str> = container
        .volume_mounts
        .iter()
        .flatten()
        .filter(|m| m.name == name && m.sub_path.is_none())
        .map(|m| m.mount_path.as_str())
        .collect();
    assert_eq!(mounts.len(), 1, "volume {name} is mounted once, whole: {mounts:?}");
    mounts[0]
}

/// The container's arguments after `serve`.
fn serve_args(container: &Container) -> Vec<&str> {
    let args: Vec<&str> = container.args.iter().flatten().map(String::as_str).collect();
    assert!(container.command.is_none(), "the image's entrypoint (notarius) runs; args choose the command");
    assert_eq!(args.first(), Some(&"serve"), "the container runs `notarius serve`: {args:?}");
    args[1..].to_vec()
}

/// The value of `--flag VALUE` or `--flag=VALUE` in `args`.
fn flag_value<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    args.iter().enumerate().find_map(|(i, word)| {
        if *word == flag {
            args.get(i + 1).copied()
        } else {
            word.strip_prefix(flag).and_then(|rest| rest.strip_prefix('='))
        }
    })
}

/// notarius.toml of the ConfigMap the container's `--config` names, parsed.
fn server_settings() -> toml::Table {
    let (_, pod, container) = server();
    let args = serve_args(container);
    let path = flag_value(&args, "--config").expect("the container reads a configuration file (--config)");
    let (volume_name, sub_path) = mounts(container)
        .into_iter()
        .find_map(|(mount, (volume, sub_path))| {
            if mount == path {
                Some((volume, sub_path.map(str::to_owned)))
            } else {
                let file = Path::new(path).strip_prefix(mount).ok()?;
                (sub_path.is_none()).then(|| (volume, Some(file.display().to_string())))
            }
        })
        .unwrap_or_else(|| panic!("--config {path} is not in a mounted volume"));
    let key = sub_path.expect("a file of the volume");
    let source = volume(pod, volume_name).config_map.as_ref().expect("the configuration comes from a ConfigMap");
    let text = config_map(&source.name)
        .data
        .as_ref()
        .and_then(|data| data.get(&key))
        .unwrap_or_else(|| panic!("ConfigMap {} has no {key}", source.name));
    text.parse().unwrap_or_else(|e| panic!("{key} of ConfigMap {} is not TOML: {e}", source.name))
}

/// The port the server listens on, from its `listen` setting.
fn listen_port() -> i32 {
    let settings = server_settings();
    let listen = settings.get("listen").and_then(|v| v.as_str()).expect("notarius.toml sets listen");
    let address: std::net::SocketAddr = listen.parse().unwrap_or_else(|e| panic!("listen = {listen:?}: {e}"));
    assert!(address.ip().is_unspecified(), "listen = {listen:?}: the Service reaches the Pod on its own address");
    i32::from(address.port())
}

/// The container port `port` names (a name or a number).
fn container_port(container: &Container, port: &IntOrString) -> i32 {
    let ports = container.ports.as_deref().unwrap_or_default();
    match port {
        IntOrString::Int(number) => {
            assert!(ports.iter().any(|p| p.container_port == *number), "no container port {number}");
            *number
        }
        IntOrString::String(name) => {
            ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("no container port named {name}"))
                .container_port
        }
    }
}

// --- the Kubernetes manifests --------------------------------------------------------------

#[test]
fn every_manifest_reads_as_its_kubernetes_type_without_a_lost_key() {
    let manifests = manifests();
    assert_eq!(manifests.deployments.len(), 1);
    assert_eq!(manifests.webhooks.iter().filter(|w| w.mutating).count(), 1, "one mutating webhook");
    assert_eq!(manifests.webhooks.iter().filter(|w| !w.mutating).count(), 1, "one validating webhook");
    assert!(manifests.secrets.is_empty(), "no Secret values in the repository: docs/deploy.md says how to make them");
}

/// The comparison itself, on documents that are wrong in the ways it must catch.
#[test]
fn a_misspelt_or_mistyped_key_is_caught() {
    let deployment = |spec: Value| Document {
        place: "test".into(),
        value: json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "x" }, "spec": spec }),
    };
    let template = json!({ "spec": { "containers": [{ "name": "x", "image": "x", "readOnlyRootFileSystem": true }] } });
    let misspelt = deployment(json!({ "selector": {}, "template": template }));
    let caught = std::panic::catch_unwind(|| typed::<Deployment>(&misspelt)).expect_err("a misspelt key passed");
    let message = caught.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("/spec/template/spec/containers/0/readOnlyRootFileSystem"), "{message}");

    let misplaced =
        deployment(json!({ "selector": {}, "template": { "spec": { "containers": [] } }, "strategy": "Recreate" }));
    assert!(std::panic::catch_unwind(|| typed::<Deployment>(&misplaced)).is_err(), "a string for the strategy object");
    let null = deployment(json!({ "selector": {}, "template": { "spec": { "containers": [] } }, "replicas": null }));
    assert!(std::panic::catch_unwind(|| typed::<Deployment>(&null)).is_err(), "`replicas:` left empty");
    let good = deployment(json!({ "selector": {}, "template": { "spec": { "containers": [] } }, "replicas": 1 }));
    typed::<Deployment>(&good);
}

#[test]
fn every_object_is_in_the_namespace_and_references_what_exists() {
    let manifests = manifests();
    let namespace = namespace();
    let namespaced = manifests
        .service_accounts
        .iter()
        .map(|o| ("ServiceAccount", &o.metadata))
        .chain(manifests.config_maps.iter().map(|o| ("ConfigMap", &o.metadata)))
        .chain(manifests.claims.iter().map(|o| ("PersistentVolumeClaim", &o.metadata)))
        .chain(manifests.deployments.iter().map(|o| ("Deployment", &o.metadata)))
        .chain(manifests.services.iter().map(|o| ("Service", &o.metadata)));
    for (kind, metadata) in namespaced {
        assert_eq!(metadata.namespace.as_deref(), Some(namespace), "{kind} {:?}", metadata.name);
    }

    let (deployment, pod, _) = server();
    let spec = deployment.spec.as_ref().unwrap();
    let account = pod.service_account_name.as_deref().expect("a service account of its own");
    assert!(manifests.service_accounts.iter().any(|a| a.metadata.name.as_deref() == Some(account)), "{account}");
    assert_eq!(pod.automount_service_account_token, Some(false), "notarius never calls the Kubernetes API");

    // The selector picks the template's Pods, and the Service picks the same Pods.
    let labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    let selector = spec.selector.match_labels.clone().unwrap_or_default();
    assert!(!selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v)), "{selector:?} {labels:?}");
    let service_selector = the_service().spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
    assert!(
        !service_selector.is_empty() && service_selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
        "the Service selects {service_selector:?}, the Pods have {labels:?}"
    );

    for volume in pod.volumes.iter().flatten() {
        if let Some(claim) = &volume.persistent_volume_claim {
            assert!(
                manifests.claims.iter().any(|c| c.metadata.name.as_deref() == Some(&claim.claim_name)),
                "volume {}: no PersistentVolumeClaim {}",
                volume.name,
                claim.claim_name
            );
        }
        if let Some(source) = &volume.config_map {
            let data = config_map(&source.name).data.clone().unwrap_or_default();
            for item in source.items.iter().flatten() {
                assert!(data.contains_key(&item.key), "ConfigMap {} has no {}", source.name, item.key);
            }
        }
    }
    let (_, _, container) = server();
    for (path, (volume, sub_path)) in mounts(container) {
        if let (Some(sub_path), Some(source)) = (sub_path, &crate::volume(pod, volume).config_map) {
            let data = config_map(&source.name).data.clone().unwrap_or_default();
            assert!(data.contains_key(sub_path), "{path}: ConfigMap {} has no {sub_path}", source.name);
        }
    }
}

#[test]
fn the_server_runs_as_one_sandboxed_replica_with_a_graceful_stop() {
    let (deployment, pod, container) = server();
    let spec = deployment.spec.as_ref().unwrap();
    // SQLite belongs to one process: one replica, and never two at once during a rollout.
    assert_eq!(spec.replicas, Some(1));
    assert_eq!(spec.strategy.as_ref().and_then(|s| s.type_.as_deref()), Some("Recreate"));
    let data = mount_of(container, volume_of_kind(pod, "persistentVolumeClaim"));
    assert_eq!(data, image().env["NOTARIUS_DATA_DIR"], "the volume is where the image keeps the database");
    assert!(
        Path::new(&image().env["NOTARIUS_KEYS_DIR"]).starts_with(data),
        "the generated TLS material lives on the volume too"
    );

    let pod_security = pod.security_context.as_ref().expect("a pod security context");
    assert_eq!(pod_security.run_as_non_root, Some(true));
    assert_eq!(pod_security.run_as_user, Some(image().uid), "the image's user");
    assert_eq!(pod_security.fs_group, Some(image().gid), "the volume and Secrets are readable by the image's group");
    assert_eq!(pod_security.seccomp_profile.as_ref().map(|p| p.type_.as_str()), Some("RuntimeDefault"));
    let security = container.security_context.as_ref().expect("a container security context");
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.seccomp_profile.as_ref().map(|p| p.type_.as_str()), Some("RuntimeDefault"));
    let capabilities = security.capabilities.as_ref().expect("capabilities");
    assert_eq!(capabilities.drop.as_deref(), Some(&["ALL".to_owned()][..]));
    assert!(capabilities.add.is_none());
    // A read-only root: SQLite's temporary files need a writable /tmp.
    assert!(pod.volumes.iter().flatten().any(|v| v.empty_dir.is_some() && mount_of(container, &v.name) == "/tmp"));

    let resources = container.resources.as_ref().expect("resources");
    for what in ["cpu", "memory"] {
        assert!(resources.requests.as_ref().is_some_and(|r| r.contains_key(what)), "a {what} request");
    }
    assert!(resources.limits.as_ref().is_some_and(|l| l.contains_key("memory")), "a memory limit");

    let grace = pod.termination_grace_period_seconds.expect("terminationGracePeriodSeconds");
    assert!(
        Duration::from_secs(grace.unsigned_abs()) > shutdown_grace(),
        "terminationGracePeriodSeconds {grace} must exceed the server's shutdown grace {:?}",
        shutdown_grace()
    );
}

/// The name of the one volume of the pod whose source is `kind` (`persistentVolumeClaim`).
fn volume_of_kind<'a>(pod: &'a PodSpec, kind: &str) -> &'a str {
    let names: Vec<&str> = pod
        .volumes
        .iter()
        .flatten()
        .filter(|v| serde_json::to_value(v).unwrap().get(kind).is_some())
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(names.len(), 1, "one {kind} volume: {names:?}");
    names[0]
}

#[test]
fn the_container_runs_real_flags_on_the_port_the_service_and_probes_use() {
    let (_, pod, container) = server();
    let args = serve_args(container);
    assert_serve_flags(&args, "the Deployment's args");
    let port = listen_port();
    let service = the_service();
    let ports = service.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default();
    assert!(!ports.is_empty(), "the Service has ports");
    for service_port in &ports {
        let target = service_port.target_port.clone().unwrap_or(IntOrString::Int(service_port.port));
        assert_eq!(container_port(container, &target), port, "Service port {} reaches the server", service_port.port);
    }

    let settings = server_settings();
    let plain = settings.get("plain_http").and_then(|v| v.as_bool()).unwrap_or(false);
    let probes = [
        ("startup", &container.startup_probe),
        ("readiness", &container.readiness_probe),
        ("liveness", &container.liveness_probe),
    ];
    for (what, probe) in probes {
        let http = probe.as_ref().and_then(|p| p.http_get.as_ref()).unwrap_or_else(|| panic!("a {what} HTTP probe"));
        assert_eq!(http.path.as_deref(), Some("/healthz"), "{what} probe");
        assert_eq!(container_port(container, &http.port), port, "{what} probe port");
        assert_eq!(http.scheme.as_deref().unwrap_or("HTTP"), if plain { "HTTP" } else { "HTTPS" }, "{what} probe");
    }

    // Paths of the settings file are where the Deployment mounts what they name.
    let mounted = mounts(container);
    for key in ["tls_cert", "tls_key"] {
        if let Some(path) = settings.get(key).and_then(|v| v.as_str()) {
            let dir = Path::new(path).parent().unwrap().to_str().unwrap();
            let (volume, _) = mounted.get(dir).unwrap_or_else(|| panic!("{key} = {path:?}: {dir} is not mounted"));
            let secret = crate::volume(pod, volume).secret.as_ref().expect("TLS material comes from a Secret");
            let name = secret.secret_name.as_deref().unwrap();
            let file = Path::new(path).file_name().unwrap().to_str().unwrap();
            assert!(
                ["tls.crt", "tls.key"].contains(&file),
                "{key}: a kubernetes.io/tls Secret holds tls.crt and tls.key"
            );
            assert!(docs_create_secret(name, "tls"), "docs/deploy.md makes the Secret {name} with `create secret tls`");
        }
    }
    let policies = mount_of(container, volume_of_config_map(pod, "notarius-policies"));
    assert_eq!(policies, image().env["NOTARIUS_POLICIES"], "the policies are where the image reads them");
}

fn volume_of_config_map<'a>(pod: &'a PodSpec, config_map: &str) -> &'a str {
    pod.volumes
        .iter()
        .flatten()
        .find(|v| v.config_map.as_ref().is_some_and(|c| c.name == config_map))
        .map(|v| v.name.as_str())
        .unwrap_or_else(|| panic!("no volume of ConfigMap {config_map}"))
}

#[test]
fn the_settings_file_names_real_settings_the_image_does_not_override() {
    let settings = server_settings();
    assert!(!settings.is_empty());
    for key in settings.keys() {
        let flag = format!("--{}", key.replace('_', "-"));
        assert!(lists_flag(serve_help(), &flag), "notarius.toml: {key} is not a setting (no {flag} in `serve --help`)");
        // The environment outranks the file: a key the image's environment also sets
        // would be silently overridden.
        let variable = format!("NOTARIUS_{}", key.to_ascii_uppercase());
        assert!(
            !image().env.contains_key(&variable),
            "notarius.toml sets {key}, which the image's {variable} overrides: change it in the Deployment's env"
        );
    }
    // Secrets never go in the ConfigMap.
    for key in SECRET_SETTINGS {
        assert!(!settings.contains_key(*key), "{key} in a ConfigMap: use the Secret and {key}_file");
    }
}

#[test]
fn secrets_are_read_from_mounted_files_the_docs_tell_how_to_make() {
    let (_, pod, container) = server();
    let mounted = mounts(container);
    let mut from_files = BTreeSet::new();
    for variable in container.env.iter().flatten() {
        assert_server_variable(&variable.name, "the Deployment's env");
        let key = variable.name.trim_start_matches("NOTARIUS_").to_ascii_lowercase();
        let secret_setting = key.strip_suffix("_file").filter(|s| SECRET_SETTINGS.contains(s));
        assert!(
            !SECRET_SETTINGS.contains(&key.as_str()),
            "{}: a secret as a plain variable; mount it and use {}_FILE",
            variable.name,
            variable.name
        );
        let Some(secret_setting) = secret_setting else {
            continue;
        };
        from_files.insert(secret_setting.to_owned());
        let path = Path::new(variable.value.as_deref().expect("a path"));
        let dir = path.parent().unwrap().to_str().unwrap();
        let file = path.file_name().unwrap().to_str().unwrap();
        let (volume, _) = mounted.get(dir).unwrap_or_else(|| panic!("{}: {dir} is not mounted", variable.name));
        let secret = crate::volume(pod, volume).secret.as_ref().expect("secrets come from a Secret volume");
        let name = secret.secret_name.as_deref().unwrap();
        assert!(
            docs_create_secret(name, "generic") && docs_secret_has_key(name, file),
            "{}: docs/deploy.md must make the Secret {name} with the key {file} (--from-file={file}=...)",
            variable.name
        );
    }
    for needed in ["key_passphrase", "bootstrap_admin"] {
        assert!(from_files.contains(needed), "{needed} comes from a mounted file ({needed}_file)");
    }
}

/// docs/deploy.md with continued shell lines joined.
fn deploy_docs() -> String {
    read(&repo().join("docs/deploy.md")).replace("\\\n", " ")
}

fn docs_create_secret(name: &str, kind: &str) -> bool {
    deploy_docs().lines().any(|line| {
        line.contains(&format!("create secret {kind} {name}")) && line.contains(&format!("-n {}", namespace()))
    })
}

fn docs_secret_has_key(name: &str, key: &str) -> bool {
    deploy_docs().lines().any(|line| {
        line.contains(&format!("create secret generic {name}")) && line.contains(&format!("--from-file={key}="))
    })
}

#[test]
fn the_shipped_policies_pass_the_linter() {
    let policies = config_map("notarius-policies").data.clone().unwrap_or_default();
    assert!(!policies.is_empty());
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in &policies {
        assert!(name.ends_with(".toml"), "{name}: the server loads *.toml files only");
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let output =
        Command::new(env!("CARGO_BIN_EXE_notarius")).args(["policy", "lint"]).arg(dir.path()).output().unwrap();
    assert!(
        output.status.success(),
        "notarius policy lint on ConfigMap notarius-policies: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// --- the webhooks ----------------------------------------------------------------------------

/// What notarius decides, by resource: (group, resource) of the rules → the kind it reads.
const ADMITTED: &[(&str, &str, &str)] = &[
    ("", "pods", "Pod"),
    ("", "pods/ephemeralcontainers", "Pod"),
    ("", "replicationcontrollers", "ReplicationController"),
    ("apps", "deployments", "Deployment"),
    ("apps", "replicasets", "ReplicaSet"),
    ("apps", "statefulsets", "StatefulSet"),
    ("apps", "daemonsets", "DaemonSet"),
    ("batch", "jobs", "Job"),
    ("batch", "cronjobs", "CronJob"),
];

/// (group, version, resource) sent by `hook`, with the operations of each.
fn sent(hook: &Webhook) -> BTreeSet<(String, String, String)> {
    let mut sent = BTreeSet::new();
    for rule in &hook.rules {
        let operations: Vec<&str> = rule.operations.iter().flatten().map(String::as_str).collect();
        assert_eq!(operations, ["CREATE", "UPDATE"], "{}: images change on create and update only", hook.place);
        assert_eq!(rule.scope.as_deref(), Some("Namespaced"), "{}", hook.place);
        for group in rule.api_groups.iter().flatten() {
            for version in rule.api_versions.iter().flatten() {
                for resource in rule.resources.iter().flatten() {
                    sent.insert((group.clone(), version.clone(), resource.clone()));
                }
            }
        }
    }
    sent
}

#[test]
fn the_webhooks_call_the_service_safely_for_every_workload_kind() {
    let service = the_service();
    let service_ports: Vec<i32> = service.spec.as_ref().unwrap().ports.iter().flatten().map(|p| p.port).collect();
    let expected: BTreeSet<(String, String, String)> =
        ADMITTED.iter().map(|(g, r, _)| (g.to_string(), "v1".to_string(), r.to_string())).collect();
    for hook in &manifests().webhooks {
        let place = &hook.place;
        let reference = hook.client_config.service.as_ref().expect("the webhook calls the Service");
        assert!(hook.client_config.url.is_none(), "{place}");
        assert_eq!(Some(&reference.name), service.metadata.name.as_ref(), "{place}: service name");
        assert_eq!(Some(&reference.namespace), service.metadata.namespace.as_ref(), "{place}: service namespace");
        let port = reference.port.unwrap_or(443);
        assert!(service_ports.contains(&port), "{place}: port {port} is not a port of the Service");
        let path = if hook.mutating { "/v1/admission/mutate" } else { "/v1/admission/validate" };
        assert_eq!(reference.path.as_deref(), Some(path), "{place}");
        assert!(hook.client_config.ca_bundle.is_some(), "{place}: the CA of the server's certificate");

        assert_eq!(hook.failure_policy.as_deref(), Some("Fail"), "{place}: an unreachable notarius must not admit");
        assert_eq!(hook.side_effects, "None", "{place}");
        assert!(hook.admission_review_versions.contains(&"v1".to_owned()), "{place}");
        // Notarius answers within its decision budget; the API server waits longer, so the
        // user sees notarius's reason rather than a timeout.
        let budget = notarius::policy::admission::DECISION_BUDGET;
        let timeout = hook.timeout_seconds.unwrap_or(10);
        assert!(
            Duration::from_secs(u64::from(timeout.unsigned_abs())) > budget,
            "{place}: timeoutSeconds {timeout} <= {budget:?}"
        );
        // No label a tenant could set opts out (KA-08).
        assert!(hook.object_selector.is_none(), "{place}: no objectSelector");

        // notarius's own namespace and kube-system are never sent.
        let selector = hook.namespace_selector.as_ref().expect("a namespaceSelector");
        assert!(selector.match_labels.is_none(), "{place}");
        let exempt: BTreeSet<&str> = selector
            .match_expressions
            .iter()
            .flatten()
            .filter(|e| e.key == "kubernetes.io/metadata.name" && e.operator == "NotIn")
            .flat_map(|e| e.values.iter().flatten().map(String::as_str))
            .collect();
        for namespace in [namespace(), "kube-system"] {
            assert!(exempt.contains(namespace), "{place}: namespace {namespace} must be exempt");
        }
        assert_eq!(sent(hook), expected, "{place}: the resources notarius decides, in v1");
    }
}

/// A workload of `kind` whose pod spec is `pod`.
fn workload(group: &str, kind: &str, pod: &Value) -> Value {
    let api_version = if group.is_empty() { "v1".to_owned() } else { format!("{group}/v1") };
    let labels = json!({ "app": "web" });
    let template = json!({ "metadata": { "labels": labels }, "spec": pod });
    let spec = match kind {
        "Pod" => pod.clone(),
        "Job" | "ReplicationController" => json!({ "template": template }),
        "CronJob" => json!({ "schedule": "0 * * * *", "jobTemplate": { "spec": { "template": template } } }),
        _ => json!({ "selector": { "matchLabels": labels }, "template": template }),
    };
    json!({ "apiVersion": api_version, "kind": kind, "metadata": { "name": "web", "namespace": "prod" }, "spec": spec })
}

/// A review of `resource` as the API server sends it for these rules.
fn review(group: &str, resource: &str, kind: &str, image: &str) -> Value {
    let containers = json!([{ "name": "web", "image": image }]);
    let (operation, object, old_object, sub_resource) = match resource.split_once('/') {
        // What `kubectl debug` sends: an update of the Pod's ephemeral containers.
        Some((_, sub_resource)) => {
            let old = workload(group, kind, &json!({ "containers": containers }));
            let mut new = old.clone();
            new["spec"]["ephemeralContainers"] = json!([{ "name": "debug", "image": image }]);
            ("UPDATE", new, old, Some(sub_resource))
        }
        None => ("CREATE", workload(group, kind, &json!({ "containers": containers })), Value::Null, None),
    };
    let base = resource.split('/').next().unwrap();
    let mut request = json!({
        "uid": "deploy-manifests",
        "kind": { "group": group, "version": "v1", "kind": kind },
        "resource": { "group": group, "version": "v1", "resource": base },
        "name": "web",
        "namespace": "prod",
        "operation": operation,
        "userInfo": { "username": "alice" },
        "object": object,
        "oldObject": old_object,
    });
    if let Some(sub_resource) = sub_resource {
        request["subResource"] = json!(sub_resource);
    }
    json!({ "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request })
}

/// Every resource a webhook sends reaches its path on a real server, which reads the
/// object and decides its image: with no policy, it denies, naming the image. A kind it did
/// not read would be allowed untouched, and a wrong path would not be a route.
#[tokio::test]
async fn every_resource_the_webhooks_send_is_decided_by_the_route_they_call() {
    let server = TestServer::start().await;
    let image = "registry.example.com/team/web:v1";
    for hook in &manifests().webhooks {
        let path = hook.client_config.service.as_ref().and_then(|s| s.path.as_deref()).unwrap();
        for (group, _, resource) in sent(hook) {
            let kind = ADMITTED
                .iter()
                .find(|(g, r, _)| *g == group && *r == resource)
                .map(|(_, _, kind)| *kind)
                .unwrap_or_else(|| panic!("{}: notarius does not decide {group}/{resource}", hook.place));
            let response = server
                .client
                .post(server.url(path))
                .json(&review(&group, &resource, kind, image))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            assert_eq!(status, 200, "{}: POST {path} for {resource}: {answer}", hook.place);
            assert_eq!(answer["response"]["uid"], "deploy-manifests", "{answer}");
            assert_eq!(answer["response"]["allowed"], false, "{}: {resource} was not decided: {answer}", hook.place);
            let message = answer["response"]["status"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(image), "{}: {resource}: {message}", hook.place);
        }
    }
}

// --- the container image ---------------------------------------------------------------------

/// One instruction of the Dockerfile: keyword and the rest, continuation lines joined.
struct Instruction {
    keyword: String,
    rest: String,
}

fn dockerfile() -> String {
    read(&repo().join("deploy/Dockerfile"))
}

/// The instructions of each stage (the part before the first FROM is stage 0's prelude).
fn stages() -> Vec<Vec<Instruction>> {
    let mut stages: Vec<Vec<Instruction>> = vec![Vec::new()];
    let mut pending = String::new();
    for line in dockerfile().lines() {
        let trimmed = line.trim();
        if pending.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        if let Some(start) = trimmed.strip_suffix('\\') {
            pending.push_str(start);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let (keyword, rest) = pending.split_once(char::is_whitespace).unwrap_or((&pending, ""));
        let instruction = Instruction { keyword: keyword.to_ascii_uppercase(), rest: rest.trim().to_owned() };
        if instruction.keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages.last_mut().unwrap().push(instruction);
        pending.clear();
    }
    assert!(pending.is_empty(), "the Dockerfile ends in a continuation");
    stages
}

/// What the runtime image is: its user, its environment, its volumes and ports, and its
/// commands.
struct Image {
    uid: i64,
    gid: i64,
    env: BTreeMap<String, String>,
    volumes: Vec<String>,
    exposed: Vec<u16>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    healthcheck: Vec<String>,
}

fn exec_form(what: &str, text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what} {text}: the exec form (a JSON array) is needed: {e}"))
}

fn image() -> &'static Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let stages = stages();
        let runtime = stages.last().unwrap();
        let user = runtime.iter().rfind(|i| i.keyword == "USER").expect("the image sets a USER");
        let (uid, gid) = user.rest.split_once(':').unwrap_or((&user.rest, &user.rest));
        let uid: i64 = uid.parse().unwrap_or_else(|_| panic!("USER {}: a numeric user", user.rest));
        let gid: i64 = gid.parse().unwrap_or_else(|_| panic!("USER {}: a numeric group", user.rest));
        let mut env = BTreeMap::new();
        for instruction in runtime.iter().filter(|i| i.keyword == "ENV") {
            for pair in instruction.rest.split_whitespace() {
                let (name, value) = pair.split_once('=').expect("ENV NAME=VALUE");
                env.insert(name.to_owned(), value.to_owned());
            }
        }
        let last = |keyword: &str| runtime.iter().rfind(|i| i.keyword == keyword).map(|i| i.rest.clone());
        let healthcheck = last("HEALTHCHECK").expect("a HEALTHCHECK");
        let (_, command) = healthcheck.split_once("CMD ").expect("HEALTHCHECK ... CMD [...]");
        Image {
            uid,
            gid,
            env,
            volumes: runtime
                .iter()
                .filter(|i| i.keyword == "VOLUME")
                .flat_map(|i| exec_form("VOLUME", &i.rest))
                .collect(),
            exposed: runtime
                .iter()
                .filter(|i| i.keyword == "EXPOSE")
                .flat_map(|i| {
                    i.rest.split_whitespace().map(|p| p.trim_end_matches("/tcp").parse().unwrap()).collect::<Vec<u16>>()
                })
                .collect(),
            entrypoint: exec_form("ENTRYPOINT", &last("ENTRYPOINT").expect("an ENTRYPOINT")),
            cmd: exec_form("CMD", &last("CMD").expect("a CMD")),
            healthcheck: exec_form("HEALTHCHECK", command.trim()),
        }
    })
}

#[test]
fn the_image_runs_notarius_as_a_numeric_non_root_user() {
    let image = image();
    assert!(image.uid > 0 && image.gid > 0, "not root");
    assert_eq!(image.entrypoint, ["notarius"]);
    let runtime = stages().pop().unwrap();
    let copies_binary = runtime
        .iter()
        .any(|i| i.keyword == "COPY" && i.rest.starts_with("--from=") && i.rest.ends_with(" /usr/local/bin/notarius"));
    assert!(copies_binary, "the binary is on the PATH of the runtime image");
    // The data folder is a volume owned by the user.
    let data = &image.env["NOTARIUS_DATA_DIR"];
    assert!(image.volumes.contains(data), "VOLUME {data}");
    assert!(
        runtime.iter().any(|i| i.keyword == "COPY"
            && i.rest.contains(&format!("--chown={}:{}", image.uid, image.gid))
            && i.rest.ends_with(&format!(" {data}"))),
        "{data} belongs to the image's user"
    );
    assert!(Path::new(&image.env["NOTARIUS_KEYS_DIR"]).starts_with(data), "generated TLS material on the volume");
    for name in image.env.keys().filter(|n| n.starts_with("NOTARIUS_")) {
        assert_server_variable(name, "the image's ENV");
    }
}

#[test]
fn the_image_serves_and_checks_its_health_on_the_port_it_exposes() {
    let image = image();
    assert_eq!(image.cmd.first().map(String::as_str), Some("serve"), "CMD {:?}", image.cmd);
    let args: Vec<&str> = image.cmd[1..].iter().map(String::as_str).collect();
    assert_serve_flags(&args, "the image's CMD");
    let listen: std::net::SocketAddr = flag_value(&args, "--listen").expect("CMD --listen").parse().unwrap();
    assert!(listen.ip().is_unspecified(), "a container listens on every address");
    assert_eq!(image.exposed, [listen.port()]);

    // HEALTHCHECK runs the binary's own probe (no shell, no curl), whose default URL is the
    // port the server listens on.
    assert_eq!(image.healthcheck.first().map(String::as_str), Some("notarius"));
    assert_eq!(image.healthcheck.get(1).map(String::as_str), Some("healthcheck"));
    let probe_help = help(&["healthcheck"]);
    for flag in image.healthcheck[2..].iter().filter(|w| w.starts_with("--")) {
        assert!(lists_flag(&probe_help, flag), "HEALTHCHECK: {flag} is not a flag of `notarius healthcheck`");
    }
    let default_url = format!("[default: https://localhost:{}]", listen.port());
    assert!(probe_help.contains(&default_url), "`notarius healthcheck` defaults to the image's port: {probe_help}");
}

#[test]
fn the_image_builds_from_what_the_repository_has() {
    let stages = stages();
    let froms: Vec<&Instruction> = stages.iter().flatten().filter(|i| i.keyword == "FROM").collect();
    assert_eq!(froms.len(), 2, "a build stage and a runtime stage");
    // The binary links against the glibc of its build image: the same Debian release.
    let release = |image: &str| {
        [("bookworm", 12), ("debian12", 12), ("trixie", 13), ("debian13", 13)]
            .into_iter()
            .find(|(name, _)| image.contains(name))
            .map(|(_, release)| release)
            .unwrap_or_else(|| panic!("{image}: which Debian release?"))
    };
    assert_eq!(release(&froms[0].rest), release(&froms[1].rest), "build and runtime on one Debian release");

    // The Rust of the build image is at least the crate's rust-version.
    let manifest: toml::Table = read(&repo().join("Cargo.toml")).parse().unwrap();
    let needed = manifest["package"]["rust-version"].as_str().unwrap();
    let arg =
        stages[0].iter().find(|i| i.keyword == "ARG" && i.rest.starts_with("RUST_VERSION=")).expect("ARG RUST_VERSION");
    let version = |text: &str| -> Vec<u32> { text.split('.').map(|n| n.parse().unwrap()).collect() };
    assert!(version(&arg.rest["RUST_VERSION=".len()..]) >= version(needed), "{} < rust-version {needed}", arg.rest);
    assert!(froms[0].rest.contains("rust:${RUST_VERSION}"), "{}", froms[0].rest);

    // The build is locked; the stand-ins of the dependency step cover every target table
    // of Cargo.toml besides the binary, which are the benchmarks.
    let runs: Vec<&str> = stages[1].iter().filter(|i| i.keyword == "RUN").map(|i| i.rest.as_str()).collect();
    assert!(runs.iter().filter(|r| r.contains("cargo build --release --locked")).count() == 2, "{runs:?}");
    for (table, value) in &manifest {
        if value.is_array() {
            assert!(
                ["bin", "bench"].contains(&table.as_str()),
                "[[{table}]]: the Dockerfile makes stand-ins for benches only"
            );
        }
    }

    // What the build copies from the context exists, and the ignore file lets it through.
    let ignore = read(&repo().join("deploy/Dockerfile.dockerignore"));
    let ignore: Vec<&str> = ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert_eq!(ignore.first(), Some(&"*"), "the ignore file lets through only what it names");
    for instruction in stages.iter().flatten().filter(|i| i.keyword == "COPY" && !i.rest.starts_with("--from=")) {
        let words: Vec<&str> = instruction.rest.split_whitespace().filter(|w| !w.starts_with("--")).collect();
        for source in &words[..words.len() - 1] {
            let path = repo().join(source);
            let found = match source.split_once('*') {
                Some((dir, suffix)) => std::fs::read_dir(repo().join(dir))
                    .unwrap()
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(suffix)),
                None => path.exists(),
            };
            assert!(found, "COPY {source}: not in the repository");
            let top = source.split('/').next().unwrap();
            assert!(ignore.contains(&format!("!{top}").as_str()), "COPY {source}: the ignore file leaves out {top}");
        }
    }
    for secret in ["keys", "data", "target"] {
        assert!(!ignore.contains(&format!("!{secret}").as_str()), "{secret}/ must stay out of the build context");
    }
}

// --- the systemd unit ------------------------------------------------------------------------

/// The unit's settings: section → key → values (a key may repeat).
fn unit() -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut current = None;
    for (number, line) in read(&repo().join("deploy/notarius.service")).lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.to_owned());
            sections.entry(name.to_owned()).or_default();
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("line {}: not KEY=VALUE: {line}", number + 1));
        let section = current.clone().unwrap_or_else(|| panic!("line {}: outside a section", number + 1));
        sections.entry(section).or_default().entry(key.trim().to_owned()).or_default().push(value.trim().to_owned());
    }
    sections
}

#[test]
fn the_unit_runs_serve_sandboxed_and_stops_gracefully() {
    let unit = unit();
    assert_eq!(unit.keys().map(String::as_str).collect::<Vec<_>>(), ["Install", "Service", "Unit"]);
    let service = &unit["Service"];
    let one = |key: &str| -> &str {
        let values = service.get(key).unwrap_or_else(|| panic!("[Service] has no {key}="));
        assert_eq!(values.len(), 1, "{key}= once");
        &values[0]
    };

    let exec: Vec<&str> = one("ExecStart").split_whitespace().collect();
    assert_eq!(exec[..2], ["/usr/local/bin/notarius", "serve"], "ExecStart");
    assert_serve_flags(&exec[2..], "ExecStart");
    let configuration = format!("/etc/{}", one("ConfigurationDirectory"));
    if let Some(config) = flag_value(&exec[2..], "--config") {
        assert!(Path::new(config).starts_with(&configuration), "--config {config} is in ConfigurationDirectory");
    }

    // The variables are the server's, and the folders are those systemd makes for it.
    let state = format!("%S/{}", one("StateDirectory"));
    let credentials: Vec<&str> =
        service.get("LoadCredential").into_iter().flatten().map(|c| c.split(':').next().unwrap()).collect();
    let mut secret_files = 0;
    for assignment in service.get("Environment").into_iter().flatten() {
        let (name, value) = assignment.split_once('=').expect("Environment=NAME=VALUE");
        assert_server_variable(name, "Environment=");
        match name {
            "NOTARIUS_DATA_DIR" | "NOTARIUS_KEYS_DIR" => assert!(value.starts_with(&state), "{name}={value}"),
            "NOTARIUS_POLICIES" => assert!(value.starts_with(&configuration.replace("/etc", "%E")), "{name}={value}"),
            _ if name.ends_with("_FILE") => {
                // A secret: a credential systemd loaded for this service only.
                let credential = value.strip_prefix("%d/").unwrap_or_else(|| panic!("{name}={value}: not in %d"));
                assert!(credentials.contains(&credential), "{name}: no LoadCredential={credential}:...");
                secret_files += 1;
            }
            _ => {}
        }
        let key = name.trim_start_matches("NOTARIUS_").to_ascii_lowercase();
        assert!(!SECRET_SETTINGS.contains(&key.as_str()), "{name}: a secret in the environment; use LoadCredential");
    }
    assert_eq!(secret_files, credentials.len(), "every credential is read by the server");

    for (key, value) in [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("LockPersonality", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("KillSignal", "SIGTERM"),
    ] {
        assert_eq!(one(key), value, "{key}=");
    }
    assert!(service["SystemCallFilter"].contains(&"@system-service".to_owned()), "SystemCallFilter=@system-service");
    let families: Vec<&str> = one("RestrictAddressFamilies").split_whitespace().collect();
    assert!(families.contains(&"AF_INET") && families.contains(&"AF_INET6"), "{families:?}");
    // No capability unless one is given on purpose (to bind a port below 1024), and then
    // the same one in both.
    assert_eq!(one("CapabilityBoundingSet"), one("AmbientCapabilities"), "capabilities");

    let stop = parse_seconds(one("TimeoutStopSec")).expect("TimeoutStopSec in seconds or minutes");
    assert!(stop > shutdown_grace(), "TimeoutStopSec {stop:?} must exceed the shutdown grace {:?}", shutdown_grace());
}

/// `systemd-analyze verify`, when it is installed. It is optional, not `require`d: the
/// checks above need no outside program, and systemd is a large package to install for
/// CI's sake. It runs on a copy whose ExecStart is the binary under test (verify checks
/// that the program exists) and counts any warning (an unknown key, a bad value) as an
/// error: verify itself exits 0 on those.
#[test]
fn systemd_accepts_the_unit_when_it_is_installed() {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join("systemd-analyze")).find(|path| path.is_file())
    });
    let Some(analyze) = found else {
        eprintln!("skipped: systemd-analyze not found (optional: the unit's text is checked without it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let unit = read(&repo().join("deploy/notarius.service"))
        .replace("/usr/local/bin/notarius", env!("CARGO_BIN_EXE_notarius"));
    let path = dir.path().join("notarius.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new(&analyze).args(["verify", "--man=no"]).arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stderr.trim().is_empty(), "systemd-analyze verify: {}\n{stderr}", output.status);
}
