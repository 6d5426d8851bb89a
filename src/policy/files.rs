//! Policy files (DESIGN §6): every `*.toml` directly in the policies folder, checked as a
//! whole, and reloaded when the files change.
//!
//! ```toml
//! content_trust = true      # false: every check allows, and says so
//! default = "deny"          # images no rule matches: "deny" or "allow"
//!
//! [[rule]]
//! name = "production needs CI"
//! repositories = ["registry.example.com/prod/**"]
//! operations = ["pull", "run", "service-create"]   # default: all three
//! signed_by_teams = ["ci"]  # default: none
//! min_signers = 1           # default 1; at least 1
//! mode = "enforce"          # or "warn"
//! ```
//!
//! - Files are read in name order; files whose names start with `.` (editor locks) and
//!   subfolders (`examples/`) are not loaded. Symbolic links are followed, as Kubernetes
//!   mounts ConfigMaps through them.
//! - A missing folder is an error; an empty one is content trust on, default deny and no
//!   rules: every image is denied until rules are written.
//! - Every error of every file is reported, each as `file:line: field: message`, with
//!   fields like `default` or `rule[2].repositories[0]` (rules count from 0 within a file).
//!   Unknown keys are errors, so a misspelt setting never silently does nothing.
//! - `content_trust` and `default` may be set in one file only, and rule names are unique
//!   across all files.
//! - `min_signers` is at least 1: a rule that asked for no signature would allow unsigned
//!   images, which is what `content_trust = false` or `default = "allow"` already say
//!   openly.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ring::digest;
use serde::Serialize;
use serde_json::{Value, json};
use toml::Spanned;
use toml::de::{DeString, DeTable, DeValue};

use super::Operation;
use super::pattern::RepositoryPattern;
use super::reference::normalize_name;
use crate::auth::valid_name;
use crate::telemetry::POLICY_RELOADS;

/// Policy files larger than this are refused unread.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// What happens to images no rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    Allow,
    Deny,
}

impl DefaultAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultAction::Allow => "allow",
            DefaultAction::Deny => "deny",
        }
    }
}

/// Whether a failing rule denies, or allows with a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleMode {
    Enforce,
    Warn,
}

impl RuleMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleMode::Enforce => "enforce",
            RuleMode::Warn => "warn",
        }
    }
}

/// One `[[rule]]` table.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    /// The file the rule came from, as shown to users: `default.toml`.
    pub file: String,
    pub repositories: Vec<RepositoryPattern>,
    /// Without duplicates, in the order written; all three when the file names none.
    pub operations: Vec<Operation>,
    /// Every team listed must have a member among the signers; without duplicates.
    pub signed_by_teams: Vec<String>,
    /// Distinct signing users needed overall; at least 1.
    pub min_signers: usize,
    pub mode: RuleMode,
}

impl Rule {
    /// True when the rule covers `gun` (normalised, as `ImageReference::gun` is) for
    /// `operation`.
    pub fn applies_to(&self, gun: &str, operation: Operation) -> bool {
        self.operations.contains(&operation) && self.repositories.iter().any(|p| p.matches_normalized(gun))
    }

    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "file": self.file,
            "repositories": self.repositories.iter().map(RepositoryPattern::as_str).collect::<Vec<_>>(),
            "operations": self.operations.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
            "signed_by_teams": self.signed_by_teams,
            "min_signers": self.min_signers,
            "mode": self.mode.as_str(),
        })
    }
}

/// Every policy file of the folder, checked and combined.
#[derive(Debug, Clone)]
pub struct PolicySet {
    /// False: every check allows, and says so.
    pub content_trust: bool,
    pub default: DefaultAction,
    /// In file order, then in the order written.
    pub rules: Vec<Rule>,
    /// The files loaded, in name order.
    pub files: Vec<String>,
    /// The file that set `content_trust`; None when none did (it is then true).
    pub content_trust_file: Option<String>,
    /// The file that set `default`; None when none did (it is then deny).
    pub default_file: Option<String>,
    /// 1 for the policies loaded at start, one more at each reload that changed them.
    pub version: u64,
    /// `sha256:<hex>` over the files' names and bytes, to show which policy decided.
    pub digest: String,
}

impl PolicySet {
    /// Checks policy files given as (file name, text), as [`load_dir`] checks the files of
    /// a folder (for tests and callers that hold the files already).
    pub fn from_sources(sources: &[(&str, &str)], version: u64) -> Result<PolicySet, Vec<PolicyFileError>> {
        let mut sources: Vec<Source> = sources
            .iter()
            .map(|(name, text)| Source { name: name.to_string(), bytes: text.as_bytes().to_vec() })
            .collect();
        sources.sort_by(|a, b| a.name.cmp(&b.name));
        parse_sources(&sources, version)
    }

    /// The rules whose repositories match `gun` and whose operations include `operation`,
    /// in file order. The GUN is normalised as docker would; one that is not a valid
    /// docker repository name matches no rule (parse references with
    /// `ImageReference::parse` first, which refuses those).
    pub fn rules_for(&self, gun: &str, operation: Operation) -> Vec<&Rule> {
        let Ok(gun) = normalize_name(gun) else {
            return Vec::new();
        };
        self.rules.iter().filter(|rule| rule.applies_to(&gun, operation)).collect()
    }

    /// The answer of `GET /v1/policies`.
    pub fn to_json(&self) -> Value {
        json!({
            "version": self.version,
            "digest": self.digest,
            "content_trust": self.content_trust,
            "content_trust_file": self.content_trust_file,
            "default": self.default.as_str(),
            "default_file": self.default_file,
            "files": self.files,
            "rules": self.rules.iter().map(Rule::to_json).collect::<Vec<_>>(),
        })
    }
}

/// A policy file that cannot be used: where, which field, and why. `line` is 1-based; 0
/// means the error is about a file or folder as a whole (the field is then `file` or
/// `directory`); syntax errors have the field `syntax`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{file}:{line}: {field}: {message}")]
pub struct PolicyFileError {
    pub file: String,
    pub line: usize,
    pub field: String,
    pub message: String,
}

/// Loads every `*.toml` directly in `dir` (not subfolders), in name order, reporting all
/// errors of all files. A missing folder is an error; an empty one gives content trust on,
/// default deny and no rules.
pub fn load_dir(dir: &Path, version: u64) -> Result<PolicySet, Vec<PolicyFileError>> {
    let sources = read_sources(dir)?;
    parse_sources(&sources, version)
}

/// A policy file as read.
struct Source {
    name: String,
    bytes: Vec<u8>,
}

fn folder_error(dir: &Path, field: &str, message: String) -> PolicyFileError {
    PolicyFileError { file: dir.display().to_string(), line: 0, field: field.into(), message }
}

fn file_error(name: &str, message: String) -> PolicyFileError {
    PolicyFileError { file: name.into(), line: 0, field: "file".into(), message }
}

fn read_sources(dir: &Path) -> Result<Vec<Source>, Vec<PolicyFileError>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(vec![folder_error(dir, "directory", "the policies folder does not exist".into())]);
        }
        Err(e) => return Err(vec![folder_error(dir, "directory", format!("cannot read the policies folder: {e}"))]),
    };
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                errors.push(folder_error(dir, "directory", format!("cannot list the policies folder: {e}")));
                continue;
            }
        };
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            if file_name.to_string_lossy().ends_with(".toml") {
                errors.push(file_error(&file_name.to_string_lossy(), "the file name is not valid UTF-8".into()));
            }
            continue;
        };
        if !name.ends_with(".toml") || name.starts_with('.') {
            continue;
        }
        // Follows symbolic links; subfolders (even one named `x.toml`) are not loaded.
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(meta) if !meta.is_file() => continue,
            Ok(meta) if meta.len() > MAX_FILE_BYTES => {
                errors.push(file_error(
                    name,
                    format!("the file is {} bytes; policy files are at most 1 MiB", meta.len()),
                ));
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                errors.push(file_error(name, format!("cannot read: {e}")));
                continue;
            }
        }
        match std::fs::read(&path) {
            Ok(bytes) => sources.push(Source { name: name.to_string(), bytes }),
            Err(e) => errors.push(file_error(name, format!("cannot read: {e}"))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    sources.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(sources)
}

/// `sha256:<hex>` over each file's name, length and bytes, in name order.
fn digest_of(sources: &[Source]) -> String {
    let mut context = digest::Context::new(&digest::SHA256);
    for source in sources {
        context.update(source.name.as_bytes());
        context.update(&[0]);
        context.update(&(source.bytes.len() as u64).to_be_bytes());
        context.update(&source.bytes);
    }
    format!("sha256:{}", hex::encode(context.finish().as_ref()))
}

/// What one file says, before the files are combined.
#[derive(Default)]
struct FileSettings {
    content_trust: Option<(bool, usize)>,
    default: Option<(DefaultAction, usize)>,
    /// Each rule with its index in the file and the line of its name.
    rules: Vec<(Rule, usize, usize)>,
}

fn parse_sources(sources: &[Source], version: u64) -> Result<PolicySet, Vec<PolicyFileError>> {
    let mut errors = Vec::new();
    let mut set = PolicySet {
        content_trust: true,
        default: DefaultAction::Deny,
        rules: Vec::new(),
        files: sources.iter().map(|s| s.name.clone()).collect(),
        content_trust_file: None,
        default_file: None,
        version,
        digest: digest_of(sources),
    };
    let mut content_trust_at: Option<(String, usize)> = None;
    let mut default_at: Option<(String, usize)> = None;
    let mut rule_names: HashMap<String, (String, usize)> = HashMap::new();
    for source in sources {
        let settings = parse_file(source, &mut errors);
        if let Some((value, line)) = settings.content_trust {
            match &content_trust_at {
                Some((file, first)) => errors.push(PolicyFileError {
                    file: source.name.clone(),
                    line,
                    field: "content_trust".into(),
                    message: format!("already set in {file}:{first}; content_trust may be set in one file only"),
                }),
                None => {
                    content_trust_at = Some((source.name.clone(), line));
                    set.content_trust = value;
                    set.content_trust_file = Some(source.name.clone());
                }
            }
        }
        if let Some((value, line)) = settings.default {
            match &default_at {
                Some((file, first)) => errors.push(PolicyFileError {
                    file: source.name.clone(),
                    line,
                    field: "default".into(),
                    message: format!("already set in {file}:{first}; default may be set in one file only"),
                }),
                None => {
                    default_at = Some((source.name.clone(), line));
                    set.default = value;
                    set.default_file = Some(source.name.clone());
                }
            }
        }
        for (rule, index, line) in settings.rules {
            if let Some((file, first)) = rule_names.get(&rule.name) {
                errors.push(PolicyFileError {
                    file: source.name.clone(),
                    line,
                    field: format!("rule[{index}].name"),
                    message: format!(
                        "rule name {:?} is already used at {file}:{first}; rule names are unique across all files",
                        rule.name
                    ),
                });
                continue;
            }
            rule_names.insert(rule.name.clone(), (source.name.clone(), line));
            set.rules.push(rule);
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        // Files are in name order already; within a file, by line.
        errors.sort_by(|a, b| a.file.cmp(&b.file).then(a.line.cmp(&b.line)));
        Err(errors)
    }
}

/// A TOML value as parsed, with the byte spans of its parts.
type Node<'i> = Spanned<DeValue<'i>>;

/// What a value is, for messages.
fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::Boolean(_) => "a boolean",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::String(_) => "a string",
        DeValue::Datetime(_) => "a date or time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// The entries of a table in the order written (toml keeps them sorted by key), so errors
/// on one line come in the order a reader meets them.
fn entries<'t, 'i>(table: &'t DeTable<'i>) -> Vec<(&'t Spanned<DeString<'i>>, &'t Node<'i>)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Reports the errors of one file.
struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    errors: &'a mut Vec<PolicyFileError>,
}

impl Checker<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    fn error(&mut self, span: &Range<usize>, field: impl Into<String>, message: impl Into<String>) {
        let line = self.line(span);
        self.errors.push(PolicyFileError {
            file: self.file.into(),
            line,
            field: field.into(),
            message: message.into(),
        });
    }

    fn string<'n>(&mut self, node: &'n Node<'_>, field: &str) -> Option<&'n str> {
        match node.get_ref() {
            DeValue::String(text) => Some(text),
            other => {
                self.error(&node.span(), field, format!("expected a string, found {}", kind(other)));
                None
            }
        }
    }

    /// A non-empty array; `what` says what belongs in it.
    fn list<'n, 'i>(&mut self, node: &'n Node<'i>, field: &str, what: &str) -> Option<&'n [Node<'i>]> {
        match node.get_ref() {
            DeValue::Array(items) if items.is_empty() => {
                self.error(&node.span(), field, format!("empty list; list {what}"));
                None
            }
            DeValue::Array(items) => Some(items),
            other => {
                self.error(&node.span(), field, format!("expected a list of {what}, found {}", kind(other)));
                None
            }
        }
    }
}

fn parse_file(source: &Source, errors: &mut Vec<PolicyFileError>) -> FileSettings {
    let mut settings = FileSettings::default();
    let text = match std::str::from_utf8(&source.bytes) {
        Ok(text) => text,
        Err(e) => {
            let line = source.bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
            errors.push(PolicyFileError {
                file: source.name.clone(),
                line,
                field: "file".into(),
                message: "not valid UTF-8; policy files are UTF-8 TOML".into(),
            });
            return settings;
        }
    };
    let mut checker = Checker { file: &source.name, text, errors };
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let line = e.span().map_or(1, |span| line_of(text, span.start));
            let message = e.message().lines().next().unwrap_or("invalid TOML").trim().to_string();
            checker.errors.push(PolicyFileError { file: source.name.clone(), line, field: "syntax".into(), message });
            return settings;
        }
    };
    for (key, value) in entries(root.get_ref()) {
        match key.get_ref().as_ref() {
            "content_trust" => match value.get_ref() {
                DeValue::Boolean(on) => settings.content_trust = Some((*on, checker.line(&key.span()))),
                other => checker.error(
                    &value.span(),
                    "content_trust",
                    format!("expected true or false, found {}", kind(other)),
                ),
            },
            "default" => match checker.string(value, "default") {
                Some("deny") => settings.default = Some((DefaultAction::Deny, checker.line(&key.span()))),
                Some("allow") => settings.default = Some((DefaultAction::Allow, checker.line(&key.span()))),
                Some(other) => {
                    checker.error(&value.span(), "default", format!("{other:?}: expected \"deny\" or \"allow\""))
                }
                None => {}
            },
            "rule" => match value.get_ref() {
                DeValue::Array(rules) => {
                    for (index, rule) in rules.iter().enumerate() {
                        if let Some((rule, line)) = parse_rule(&mut checker, rule, index) {
                            settings.rules.push((rule, index, line));
                        }
                    }
                }
                other => checker.error(
                    &value.span(),
                    "rule",
                    format!("found {}; write each rule as a [[rule]] table (two brackets)", kind(other)),
                ),
            },
            other => checker.error(
                &key.span(),
                other,
                "unknown key; a policy file has content_trust, default and [[rule]] tables",
            ),
        }
    }
    settings
}

/// One `[[rule]]` table; None (with the errors reported) when it is not usable.
fn parse_rule(checker: &mut Checker<'_>, node: &Node<'_>, index: usize) -> Option<(Rule, usize)> {
    let prefix = format!("rule[{index}]");
    let DeValue::Table(table) = node.get_ref() else {
        checker.error(&node.span(), &prefix, format!("expected a [[rule]] table, found {}", kind(node.get_ref())));
        return None;
    };
    let entries = entries(table);
    let errors_before = checker.errors.len();
    let mut name = None;
    let mut repositories = None;
    let mut operations = None;
    let mut signed_by_teams = Vec::new();
    let mut min_signers = 1;
    let mut mode = RuleMode::Enforce;
    for &(key, value) in &entries {
        let field = format!("{prefix}.{}", key.get_ref());
        match key.get_ref().as_ref() {
            "name" => {
                if let Some(text) = checker.string(value, &field) {
                    if text.trim().is_empty() {
                        checker.error(&value.span(), &field, "empty name; every rule needs a name");
                    } else if text.trim() != text || text.chars().any(char::is_control) || text.chars().count() > 200 {
                        checker.error(
                            &value.span(),
                            &field,
                            "a rule name is at most 200 characters, without control characters or surrounding spaces",
                        );
                    } else {
                        name = Some((text.to_string(), checker.line(&value.span())));
                    }
                }
            }
            "repositories" => {
                if let Some(items) = checker.list(value, &field, "repository patterns, such as \"registry.example.com/prod/**\"") {
                    let mut patterns = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let item_field = format!("{field}[{i}]");
                        if let Some(text) = checker.string(item, &item_field) {
                            match RepositoryPattern::parse(text) {
                                Ok(pattern) => patterns.push(pattern),
                                Err(error) => checker.error(&item.span(), &item_field, error.to_string()),
                            }
                        }
                    }
                    repositories = Some(patterns);
                }
            }
            "operations" => {
                let what = "operations: \"pull\", \"run\", \"service-create\" (or leave operations out for all three)";
                if let Some(items) = checker.list(value, &field, what) {
                    let mut list = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let item_field = format!("{field}[{i}]");
                        match checker.string(item, &item_field).map(|text| (text, Operation::parse(text))) {
                            Some((_, Some(operation))) if !list.contains(&operation) => list.push(operation),
                            Some((_, Some(_))) => {}
                            Some((text, None)) => checker.error(
                                &item.span(),
                                &item_field,
                                format!("unknown operation {text:?}; expected \"pull\", \"run\" or \"service-create\""),
                            ),
                            None => {}
                        }
                    }
                    operations = Some(list);
                }
            }
            "signed_by_teams" => match value.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let item_field = format!("{field}[{i}]");
                        if let Some(team) = checker.string(item, &item_field) {
                            if !valid_name(team) {
                                checker.error(
                                    &item.span(),
                                    &item_field,
                                    format!(
                                        "{team:?} is not a valid team name: 1 to 64 lower-case letters, digits, \
                                         '.', '_' and '-', starting and ending with a letter or digit"
                                    ),
                                );
                            } else if !signed_by_teams.iter().any(|t| t == team) {
                                signed_by_teams.push(team.to_string());
                            }
                        }
                    }
                }
                other => checker.error(&value.span(), &field, format!("expected a list of team names, found {}", kind(other))),
            },
            "min_signers" => match value.get_ref() {
                DeValue::Integer(n) => match i64::from_str_radix(n.as_str(), n.radix()) {
                    Ok(count) if count >= 1 => min_signers = usize::try_from(count).unwrap_or(usize::MAX),
                    Ok(count) => checker.error(
                        &value.span(),
                        &field,
                        format!("{count}: at least 1 (for images that need no signature, use default = \"allow\" or content_trust = false)"),
                    ),
                    Err(_) => checker.error(&value.span(), &field, format!("{n}: too large for a number of signers")),
                },
                other => checker.error(&value.span(), &field, format!("expected a whole number, found {}", kind(other))),
            },
            "mode" => match checker.string(value, &field) {
                Some("enforce") => mode = RuleMode::Enforce,
                Some("warn") => mode = RuleMode::Warn,
                Some(other) => checker.error(&value.span(), &field, format!("{other:?}: expected \"enforce\" or \"warn\"")),
                None => {}
            },
            _ => checker.error(
                &key.span(),
                &field,
                "unknown key; a rule has name, repositories, operations, signed_by_teams, min_signers and mode",
            ),
        }
    }
    let has_name = table.contains_key("name");
    let has_repositories = table.contains_key("repositories");
    if !has_name {
        checker.error(&node.span(), format!("{prefix}.name"), "missing; every rule needs a name");
    }
    if !has_repositories {
        checker.error(
            &node.span(),
            format!("{prefix}.repositories"),
            "missing; list the repository patterns the rule covers",
        );
    }
    if checker.errors.len() > errors_before {
        return None;
    }
    let (name, line) = name?;
    let rule = Rule {
        name,
        file: checker.file.to_string(),
        repositories: repositories?,
        operations: operations.unwrap_or_else(|| Operation::ALL.to_vec()),
        signed_by_teams,
        min_signers,
        mode,
    };
    Some((rule, line))
}

/// The policies in force, reloaded when the files change. A reload that finds errors
/// keeps the previous policies and logs each error.
pub struct PolicyWatcher {
    dir: PathBuf,
    current: RwLock<Arc<PolicySet>>,
    /// What the files looked like at the last read (their digest, or the errors reading
    /// them), loaded or not: polling re-checks only when it changes, so a broken file is
    /// reported once rather than at every poll.
    last_seen: Mutex<Option<String>>,
    /// One reload at a time, so versions go up by one.
    reloading: tokio::sync::Mutex<()>,
}

impl PolicyWatcher {
    /// Loads the folder as version 1; refuses to start on any error.
    pub fn start(dir: PathBuf) -> Result<Arc<PolicyWatcher>, Vec<PolicyFileError>> {
        let set = load_dir(&dir, 1)?;
        tracing::info!(
            "policies: {} rules from {} files in {} ({}), content trust {}, default {}",
            set.rules.len(),
            set.files.len(),
            dir.display(),
            set.digest,
            if set.content_trust { "on" } else { "off" },
            set.default.as_str()
        );
        Ok(Arc::new(PolicyWatcher {
            dir,
            last_seen: Mutex::new(Some(set.digest.clone())),
            current: RwLock::new(Arc::new(set)),
            reloading: tokio::sync::Mutex::new(()),
        }))
    }

    /// The folder watched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The policies in force.
    pub fn current(&self) -> Arc<PolicySet> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Re-reads the folder now. True when the files changed and the new policies are in
    /// force (with the version one up); on errors the previous policies stay.
    pub async fn reload_now(&self) -> Result<bool, Vec<PolicyFileError>> {
        self.reload(true).await
    }

    /// Re-reads the folder every `every` on a tokio task, installing changed policies and
    /// logging refused ones. Each poll reads the (small) files and compares their digest,
    /// which sees every change to a file's name or bytes, mtime granularity or not. The
    /// task ends when the watcher is dropped.
    pub fn spawn_polling(self: &Arc<Self>, every: Duration) {
        let watcher = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate; the files were just read.
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(watcher) = watcher.upgrade() else {
                    break;
                };
                // Errors are logged by reload.
                let _ = watcher.reload(false).await;
            }
        });
    }

    async fn reload(&self, forced: bool) -> Result<bool, Vec<PolicyFileError>> {
        let _turn = self.reloading.lock().await;
        let dir = self.dir.clone();
        let read = tokio::task::spawn_blocking(move || read_sources(&dir)).await.unwrap_or_else(|e| {
            Err(vec![folder_error(&self.dir, "directory", format!("reading the policy files failed: {e}"))])
        });
        let seen = match &read {
            Ok(sources) => digest_of(sources),
            Err(errors) => errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
        };
        {
            let mut last_seen = self.last_seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let unchanged = last_seen.as_deref() == Some(seen.as_str());
            *last_seen = Some(seen.clone());
            if unchanged && !forced {
                return Ok(false);
            }
        }
        let current = self.current();
        let outcome = read.and_then(|sources| {
            if digest_of(&sources) == current.digest {
                Ok(None)
            } else {
                parse_sources(&sources, current.version + 1).map(Some)
            }
        });
        match outcome {
            Ok(None) => Ok(false),
            Ok(Some(set)) => {
                tracing::info!(
                    "policies reloaded: version {}, {} rules from {} files ({})",
                    set.version,
                    set.rules.len(),
                    set.files.len(),
                    set.digest
                );
                metrics::counter!(POLICY_RELOADS, "outcome" => "loaded").increment(1);
                *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(set);
                Ok(true)
            }
            Err(errors) => {
                metrics::counter!(POLICY_RELOADS, "outcome" => "refused").increment(1);
                for error in &errors {
                    tracing::error!("policy files refused, version {} stays in force: {error}", current.version);
                }
                Err(errors)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn errors_of(sources: &[(&str, &str)]) -> Vec<PolicyFileError> {
        match PolicySet::from_sources(sources, 1) {
            Ok(set) => panic!("accepted: {:?}", set.to_json()),
            Err(errors) => errors,
        }
    }

    /// The one error of `sources`, as `file:line: field`, and its message.
    fn one_error(sources: &[(&str, &str)]) -> (String, String) {
        let errors = errors_of(sources);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        let e = &errors[0];
        (format!("{}:{}: {}", e.file, e.line, e.field), e.message.clone())
    }

    const GOOD: &str = r#"
content_trust = true
default = "deny"

[[rule]]
name = "production needs CI"
repositories = ["registry.example.com/prod/**"]
signed_by_teams = ["ci"]

[[rule]]
name = "official images"
repositories = ["nginx", "docker.io/library/alpine"]
operations = ["run", "pull", "run"]
signed_by_teams = ["platform", "qa", "platform"]
min_signers = 2
mode = "warn"
"#;

    #[test]
    fn good_file_and_defaults() {
        let set = PolicySet::from_sources(&[("default.toml", GOOD)], 7).unwrap();
        assert!(set.content_trust);
        assert_eq!(set.default, DefaultAction::Deny);
        assert_eq!(set.version, 7);
        assert_eq!(set.files, vec!["default.toml"]);
        assert_eq!(set.content_trust_file.as_deref(), Some("default.toml"));
        assert_eq!(set.rules.len(), 2);
        let ci = &set.rules[0];
        assert_eq!(ci.name, "production needs CI");
        assert_eq!(ci.file, "default.toml");
        assert_eq!(ci.operations, Operation::ALL.to_vec());
        assert_eq!(ci.min_signers, 1);
        assert_eq!(ci.mode, RuleMode::Enforce);
        assert_eq!(ci.signed_by_teams, vec!["ci"]);
        let official = &set.rules[1];
        assert_eq!(official.operations, vec![Operation::Run, Operation::Pull]);
        assert_eq!(official.signed_by_teams, vec!["platform", "qa"]);
        assert_eq!(official.min_signers, 2);
        assert_eq!(official.mode, RuleMode::Warn);
        assert!(set.digest.starts_with("sha256:") && set.digest.len() == 71);
    }

    #[test]
    fn nothing_set_means_content_trust_on_and_deny() {
        let set = PolicySet::from_sources(&[("empty.toml", "# nothing yet\n")], 1).unwrap();
        assert!(set.content_trust);
        assert_eq!(set.default, DefaultAction::Deny);
        assert!(set.rules.is_empty());
        assert_eq!(set.content_trust_file, None);
        assert_eq!(set.default_file, None);
    }

    #[test]
    fn rules_for_matches_repositories_and_operations() {
        let set = PolicySet::from_sources(&[("default.toml", GOOD)], 1).unwrap();
        let names =
            |gun: &str, operation| set.rules_for(gun, operation).iter().map(|r| r.name.as_str()).collect::<Vec<_>>();
        assert_eq!(names("registry.example.com/prod/app", Operation::ServiceCreate), ["production needs CI"]);
        assert_eq!(names("registry.example.com/production/app", Operation::Run), Vec::<&str>::new());
        assert_eq!(names("docker.io/library/nginx", Operation::Run), ["official images"]);
        assert_eq!(names("nginx", Operation::Pull), ["official images"]);
        assert_eq!(names("docker.io/library/nginx", Operation::ServiceCreate), Vec::<&str>::new());
        assert_eq!(names("registry.example.com.evil.io/prod/app", Operation::Run), Vec::<&str>::new());
        assert_eq!(names("Not A Gun", Operation::Run), Vec::<&str>::new());
    }

    #[test]
    fn to_json_shape() {
        let set = PolicySet::from_sources(&[("default.toml", GOOD)], 3).unwrap();
        let value = set.to_json();
        assert_eq!(value["version"], 3);
        assert_eq!(value["digest"], set.digest.as_str());
        assert_eq!(value["content_trust"], true);
        assert_eq!(value["content_trust_file"], "default.toml");
        assert_eq!(value["default"], "deny");
        assert_eq!(value["files"], json!(["default.toml"]));
        assert_eq!(
            value["rules"][1],
            json!({
                "name": "official images",
                "file": "default.toml",
                "repositories": ["nginx", "docker.io/library/alpine"],
                "operations": ["run", "pull"],
                "signed_by_teams": ["platform", "qa"],
                "min_signers": 2,
                "mode": "warn",
            })
        );
    }

    #[test]
    fn syntax_error_names_the_line() {
        let (at, message) = one_error(&[("a.toml", "default = \"deny\"\n\n[[rule]\nname = \"x\"\n")]);
        assert_eq!(at, "a.toml:3: syntax");
        assert!(!message.is_empty());
        let (at, _) = one_error(&[("a.toml", "content_trust = true\ncontent_trust = false\n")]);
        assert_eq!(at, "a.toml:2: syntax");
        let (at, _) = one_error(&[("a.toml", "default = \"deny\n")]);
        assert_eq!(at, "a.toml:1: syntax");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let (at, message) = one_error(&[("a.toml", "content_trust = true\ndefualt = \"allow\"\n")]);
        assert_eq!(at, "a.toml:2: defualt");
        assert!(message.contains("unknown key"), "{message}");
        let text = "[[rule]]\nname = \"x\"\nrepositories = [\"nginx\"]\nsigned_by_team = [\"ci\"]\n";
        let (at, message) = one_error(&[("a.toml", text)]);
        assert_eq!(at, "a.toml:4: rule[0].signed_by_team");
        assert!(message.contains("signed_by_teams"), "{message}");
    }

    #[test]
    fn bad_pattern_names_the_element() {
        let text = "default = \"deny\"\n\n[[rule]]\nname = \"a\"\nrepositories = [\"nginx\"]\n\n[[rule]]\nname = \"b\"\nrepositories = [\n  \"Registry.example.com/**\",\n]\n";
        let (at, message) = one_error(&[("a.toml", text)]);
        assert_eq!(at, "a.toml:10: rule[1].repositories[0]");
        assert!(message.contains("lower case"), "{message}");
        let text = "[[rule]]\nname = \"a\"\nrepositories = [\"registry.example.com/prod/**x\"]\n";
        assert_eq!(one_error(&[("a.toml", text)]).0, "a.toml:3: rule[0].repositories[0]");
        let text = "[[rule]]\nname = \"a\"\nrepositories = []\n";
        assert_eq!(one_error(&[("a.toml", text)]).0, "a.toml:3: rule[0].repositories");
        let text = "[[rule]]\nname = \"a\"\nrepositories = \"nginx\"\n";
        assert_eq!(one_error(&[("a.toml", text)]).0, "a.toml:3: rule[0].repositories");
    }

    #[test]
    fn unknown_operation_names_the_element() {
        let text = "[[rule]]\nname = \"a\"\nrepositories = [\"nginx\"]\noperations = [\"pull\", \"deploy\"]\n";
        let (at, message) = one_error(&[("a.toml", text)]);
        assert_eq!(at, "a.toml:4: rule[0].operations[1]");
        assert!(message.contains("service-create"), "{message}");
        let text = "[[rule]]\nname = \"a\"\nrepositories = [\"nginx\"]\noperations = []\n";
        assert_eq!(one_error(&[("a.toml", text)]).0, "a.toml:4: rule[0].operations");
    }

    #[test]
    fn duplicate_rule_name_across_files() {
        let a = "[[rule]]\nname = \"prod\"\nrepositories = [\"nginx\"]\n";
        let b = "# b\n\n[[rule]]\nname = \"other\"\nrepositories = [\"nginx\"]\n\n[[rule]]\nname = \"prod\"\nrepositories = [\"alpine\"]\n";
        let (at, message) = one_error(&[("b.toml", b), ("a.toml", a)]);
        assert_eq!(at, "b.toml:8: rule[1].name");
        assert!(message.contains("a.toml:2"), "{message}");
        // Within one file too.
        let twice = format!("{a}\n{a}");
        assert_eq!(one_error(&[("a.toml", &twice)]).0, "a.toml:6: rule[1].name");
    }

    #[test]
    fn settings_in_two_files() {
        let (at, message) = one_error(&[("a.toml", "content_trust = true\n"), ("b.toml", "\ncontent_trust = false\n")]);
        assert_eq!(at, "b.toml:2: content_trust");
        assert!(message.contains("a.toml:1") && message.contains("one file"), "{message}");
        let (at, message) = one_error(&[("a.toml", "default = \"deny\"\n"), ("z.toml", "default = \"deny\"\n")]);
        assert_eq!(at, "z.toml:1: default");
        assert!(message.contains("a.toml:1"), "{message}");
        // One file each is fine.
        let set =
            PolicySet::from_sources(&[("a.toml", "content_trust = false\n"), ("b.toml", "default = \"allow\"\n")], 1)
                .unwrap();
        assert!(!set.content_trust);
        assert_eq!(set.default, DefaultAction::Allow);
        assert_eq!(set.content_trust_file.as_deref(), Some("a.toml"));
        assert_eq!(set.default_file.as_deref(), Some("b.toml"));
    }

    #[test]
    fn wrong_values_and_types() {
        let rule = |extra: &str| format!("[[rule]]\nname = \"a\"\nrepositories = [\"nginx\"]\n{extra}\n");
        for (text, at, hint) in [
            ("default = \"maybe\"\n".to_string(), "a.toml:1: default", "\"deny\" or \"allow\""),
            ("default = true\n".to_string(), "a.toml:1: default", "expected a string"),
            ("content_trust = \"yes\"\n".to_string(), "a.toml:1: content_trust", "true or false"),
            ("[rule]\nname = \"a\"\n".to_string(), "a.toml:1: rule", "[[rule]]"),
            ("rule = [1]\n".to_string(), "a.toml:1: rule[0]", "table"),
            (rule("min_signers = 0"), "a.toml:4: rule[0].min_signers", "at least 1"),
            (rule("min_signers = -3"), "a.toml:4: rule[0].min_signers", "at least 1"),
            (rule("min_signers = \"2\""), "a.toml:4: rule[0].min_signers", "whole number"),
            (rule("min_signers = 1.5"), "a.toml:4: rule[0].min_signers", "whole number"),
            (rule("mode = \"audit\""), "a.toml:4: rule[0].mode", "\"warn\""),
            (rule("signed_by_teams = \"ci\""), "a.toml:4: rule[0].signed_by_teams", "list of team names"),
            (rule("signed_by_teams = [\"ci\", \"Q A\"]"), "a.toml:4: rule[0].signed_by_teams[1]", "team name"),
            (rule("signed_by_teams = [3]"), "a.toml:4: rule[0].signed_by_teams[0]", "expected a string"),
            (rule("mode = 1979-05-27"), "a.toml:4: rule[0].mode", "found a date or time"),
            (rule("min_signers = 99999999999999999999"), "a.toml:4: rule[0].min_signers", "too large"),
            (rule("when = 1"), "a.toml:4: rule[0].when", "unknown key"),
            ("[[rule]]\nname = \"\"\nrepositories = [\"nginx\"]\n".to_string(), "a.toml:2: rule[0].name", "empty"),
            ("[[rule]]\nname = \" a\"\nrepositories = [\"nginx\"]\n".to_string(), "a.toml:2: rule[0].name", "spaces"),
            ("[[rule]]\nname = 5\nrepositories = [\"nginx\"]\n".to_string(), "a.toml:2: rule[0].name", "string"),
            ("\n[[rule]]\nrepositories = [\"nginx\"]\n".to_string(), "a.toml:2: rule[0].name", "missing"),
            ("\n\n[[rule]]\nname = \"a\"\n".to_string(), "a.toml:3: rule[0].repositories", "missing"),
            ("[section]\nx = 1\n".to_string(), "a.toml:1: section", "unknown key"),
        ] {
            let (found, message) = one_error(&[("a.toml", &text)]);
            assert_eq!(found, at, "{text}");
            assert!(message.contains(hint), "{text}: {message}");
        }
    }

    #[test]
    fn dates_are_not_values() {
        for value in ["1979-05-27", "07:32:00", "1979-05-27T07:32:00Z"] {
            let (at, message) = one_error(&[("a.toml", &format!("\ndefault = {value}\n"))]);
            assert_eq!(at, "a.toml:2: default");
            assert_eq!(message, "expected a string, found a date or time");
        }
    }

    #[test]
    fn integers_in_any_base() {
        let rule = |count: &str| format!("[[rule]]\nname = \"a\"\nrepositories = [\"nginx\"]\nmin_signers = {count}\n");
        for (count, expected) in [("2", 2), ("0x3", 3), ("0o4", 4), ("0b101", 5), ("1_0", 10), ("+6", 6)] {
            let set = PolicySet::from_sources(&[("a.toml", &rule(count))], 1).unwrap();
            assert_eq!(set.rules[0].min_signers, expected, "{count}");
        }
    }

    #[test]
    fn errors_on_one_line_come_in_the_order_written() {
        let errors =
            errors_of(&[("a.toml", "rule = [{ zz = 1, name = \"a\", aa = 2, repositories = [\"nginx\"] }]\n")]);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["rule[0].zz", "rule[0].aa"], "{errors:#?}");
    }

    #[test]
    fn every_error_of_every_file_is_reported() {
        let a = "defualt = \"deny\"\n[[rule]]\nname = \"x\"\nrepositories = [\"Bad\"]\noperations = [\"nope\"]\n";
        let b = "content_trust = 1\n[[rule]\n";
        let errors = errors_of(&[("b.toml", b), ("a.toml", a)]);
        let shown: Vec<String> = errors.iter().map(|e| format!("{}:{}: {}", e.file, e.line, e.field)).collect();
        assert_eq!(
            shown,
            [
                "a.toml:1: defualt",
                "a.toml:4: rule[0].repositories[0]",
                "a.toml:5: rule[0].operations[0]",
                "b.toml:2: syntax"
            ]
        );
        assert_eq!(errors[0].to_string(), format!("a.toml:1: defualt: {}", errors[0].message));
    }

    #[test]
    fn not_utf8_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), b"# ok\n# \xff\n").unwrap();
        let errors = load_dir(dir.path(), 1).unwrap_err();
        assert_eq!(errors[0].to_string(), "a.toml:2: file: not valid UTF-8; policy files are UTF-8 TOML");
    }

    #[test]
    fn folder_rules() {
        let missing = std::env::temp_dir().join("notarius-no-such-policies-folder");
        let errors = load_dir(&missing, 1).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "directory");
        assert!(errors[0].message.contains("does not exist"));

        let dir = tempfile::tempdir().unwrap();
        let empty = load_dir(dir.path(), 1).unwrap();
        assert!(empty.content_trust && empty.default == DefaultAction::Deny && empty.rules.is_empty());
        assert!(empty.files.is_empty());

        // Subfolders, dotfiles and other extensions are not loaded, even when broken.
        write(dir.path(), "b.toml", "[[rule]]\nname = \"b\"\nrepositories = [\"nginx\"]\n");
        write(dir.path(), "a.toml", "default = \"deny\"\n");
        write(dir.path(), ".#a.toml", "broken [");
        write(dir.path(), "notes.txt", "broken [");
        write(dir.path(), "a.toml.bak", "broken [");
        std::fs::create_dir(dir.path().join("examples")).unwrap();
        write(&dir.path().join("examples"), "x.toml", "broken [");
        std::fs::create_dir(dir.path().join("dir.toml")).unwrap();
        let set = load_dir(dir.path(), 4).unwrap();
        assert_eq!(set.files, vec!["a.toml", "b.toml"]);
        assert_eq!(set.rules.len(), 1);
        assert_eq!(set.version, 4);
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("..data")).unwrap();
        write(&dir.path().join("..data"), "p.toml", "default = \"allow\"\n");
        std::os::unix::fs::symlink("..data/p.toml", dir.path().join("p.toml")).unwrap();
        let set = load_dir(dir.path(), 1).unwrap();
        assert_eq!(set.files, vec!["p.toml"]);
        assert_eq!(set.default, DefaultAction::Allow);
    }

    #[test]
    fn digest_covers_names_and_bytes() {
        let digest = |sources: &[(&str, &str)]| PolicySet::from_sources(sources, 1).unwrap().digest;
        let base = digest(&[("a.toml", "default = \"deny\"\n")]);
        assert_eq!(base, digest(&[("a.toml", "default = \"deny\"\n")]));
        assert_ne!(base, digest(&[("b.toml", "default = \"deny\"\n")]));
        assert_ne!(base, digest(&[("a.toml", "default = \"deny\" \n")]));
        assert_ne!(base, digest(&[("a.toml", "default = \"deny\"\n"), ("b.toml", "")]));
        // Sorted by name, whatever order they came in.
        assert_eq!(digest(&[("a.toml", ""), ("b.toml", "#")]), digest(&[("b.toml", "#"), ("a.toml", "")]));
    }

    /// Every shipped file loads on its own, as the server would load it.
    #[test]
    fn shipped_policies_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let mut files = vec![root.join("default.toml")];
        let mut examples: Vec<PathBuf> = std::fs::read_dir(root.join("examples"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "toml"))
            .collect();
        examples.sort();
        assert!(examples.len() >= 4, "{examples:?}");
        files.extend(examples);
        for file in files {
            let dir = tempfile::tempdir().unwrap();
            let name = file.file_name().unwrap();
            std::fs::copy(&file, dir.path().join(name)).unwrap();
            let set = load_dir(dir.path(), 1).unwrap_or_else(|errors| panic!("{}: {errors:#?}", file.display()));
            assert!(set.content_trust, "{}", file.display());
            assert_eq!(set.files, vec![name.to_str().unwrap()]);
        }
        // The shipped folder itself: default.toml only, examples/ not loaded.
        let shipped = load_dir(&root, 1).unwrap();
        assert_eq!(shipped.files, vec!["default.toml"]);
        assert!(shipped.content_trust);
        assert_eq!(shipped.default, DefaultAction::Deny);
    }

    #[test]
    fn shipped_examples_say_what_they_claim() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/examples");
        let load = |name: &str| {
            let text = std::fs::read_to_string(root.join(name)).unwrap();
            PolicySet::from_sources(&[(name, &text)], 1).unwrap()
        };
        let ci = load("ci-only.toml");
        let rules = ci.rules_for("registry.example.com/prod/team/app", Operation::Run);
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].signed_by_teams, vec!["ci"]);
        let two = load("two-teams.toml");
        assert!(two.rules.iter().any(|r| r.signed_by_teams == ["ci", "qa"] && r.min_signers == 2));
        let warn = load("warn-mode.toml");
        assert!(warn.rules.iter().any(|r| r.mode == RuleMode::Warn));
        let base = load("base-images-allow-list.toml");
        assert_eq!(base.default, DefaultAction::Deny);
        for image in ["docker.io/library/alpine", "docker.io/library/debian"] {
            let rules = base.rules_for(image, Operation::Pull);
            assert!(rules.iter().any(|r| r.signed_by_teams.contains(&"platform".to_string())), "{image}");
        }
        assert!(base.rules_for("docker.io/library/ubuntu", Operation::Pull).is_empty());
    }

    #[tokio::test]
    async fn watcher_reloads_and_keeps_the_last_good_policies() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.toml", "default = \"deny\"\n");
        let watcher = PolicyWatcher::start(dir.path().to_path_buf()).unwrap();
        assert_eq!(watcher.current().version, 1);
        assert!(!watcher.reload_now().await.unwrap(), "nothing changed");
        assert_eq!(watcher.current().version, 1);

        write(dir.path(), "a.toml", "default = \"allow\"\n");
        assert!(watcher.reload_now().await.unwrap());
        let second = watcher.current();
        assert_eq!((second.version, second.default), (2, DefaultAction::Allow));

        write(dir.path(), "b.toml", "default = \"deny\"\n");
        let errors = watcher.reload_now().await.unwrap_err();
        assert_eq!(errors[0].to_string().split(": ").take(2).collect::<Vec<_>>(), ["b.toml:1", "default"]);
        assert_eq!(watcher.current().version, 2, "the previous policies stay in force");
        assert_eq!(watcher.current().digest, second.digest);

        std::fs::remove_file(dir.path().join("b.toml")).unwrap();
        assert!(!watcher.reload_now().await.unwrap(), "back to the files in force");
        write(dir.path(), "c.toml", "[[rule]]\nname = \"c\"\nrepositories = [\"nginx\"]\n");
        assert!(watcher.reload_now().await.unwrap());
        assert_eq!(watcher.current().version, 3);
        assert_eq!(watcher.current().rules.len(), 1);

        // A missing folder keeps the policies too.
        let moved = dir.path().with_extension("moved");
        std::fs::rename(dir.path(), &moved).unwrap();
        assert_eq!(watcher.reload_now().await.unwrap_err()[0].field, "directory");
        assert_eq!(watcher.current().version, 3);
        std::fs::rename(&moved, dir.path()).unwrap();
    }

    #[test]
    fn watcher_refuses_to_start_on_errors() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.toml", "default = \"never\"\n");
        let errors = PolicyWatcher::start(dir.path().to_path_buf()).err().unwrap();
        assert_eq!(errors[0].field, "default");
    }

    #[tokio::test]
    async fn polling_installs_changes() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.toml", "default = \"deny\"\n");
        let watcher = PolicyWatcher::start(dir.path().to_path_buf()).unwrap();
        watcher.spawn_polling(Duration::from_millis(20));
        write(dir.path(), "a.toml", "default = \"broken\"\n");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(watcher.current().version, 1, "a broken file is not installed");
        write(dir.path(), "a.toml", "default = \"allow\"\n");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while watcher.current().version == 1 {
            assert!(tokio::time::Instant::now() < deadline, "the change was not picked up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(watcher.current().default, DefaultAction::Allow);
        assert_eq!(watcher.current().version, 2);
    }
}
