//! `notarius admin ...`: every `/v1` administration call of DESIGN §7 as a command.
//! Each command is one request (bulk key rotation is one per page); the answer is
//! printed as it came, so the fields are the API's.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{ApiClient, ConnectionArgs};
use super::{CliError, pretty, print_answer, read_secret_line};

const ADMIN_HELP: &str = "\
Credentials:
  NOTARIUS_TOKEN=<personal access token>   sent as `Authorization: Bearer`
  --user NAME                              Basic auth; the password is the FIRST line of stdin
  With neither, requests are anonymous (enough for a server without accounts).
  --user wins over NOTARIUS_TOKEN.

Passwords on stdin, one per line, in this order:
  1. yours, when --user is given;
  2. the new password, for `users create` and `users set-password`.
  e.g.  printf '%s\\n%s\\n' \"$ADMIN_PASSWORD\" \"$NEW_PASSWORD\" | notarius admin --user root users create alice

Output: the server's JSON answer, pretty-printed on stdout; calls that answer nothing
(changes, deletions) print nothing. `tokens create` prints the secret alone on stdout
and the token's other fields on stderr.

Exit status: 0 done; 1 the server refused (its code and message are printed on stderr);
2 bad usage, an unreadable file or stdin, or no answer from the server.";

/// Manage a running server over its /v1 API.
#[derive(Debug, Args)]
#[command(after_long_help = ADMIN_HELP)]
pub struct AdminArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Accounts (server admins).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Personal access tokens of the signed-in user (an admin lists and revokes everyone's).
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Teams and their members (server admins).
    #[command(subcommand)]
    Teams(TeamsCommand),
    /// Access of users and teams to repositories.
    #[command(subcommand)]
    Grants(GrantsCommand),
    /// Repositories the caller can read, and their visibility.
    #[command(subcommand)]
    Repos(ReposCommand),
    /// Users' signing keys, and rotation of server-managed repository keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The key-encryption key that seals server-managed private keys.
    #[command(subcommand)]
    Kek(KekCommand),
    /// The audit log, newest first (server admins).
    Audit {
        /// Most records to show (server default 100, at most 10000).
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user. Its password is read from stdin: the second line with --user
    /// (your password is the first), else the first.
    Create {
        name: String,
        /// Make the user a server admin.
        #[arg(long)]
        admin: bool,
    },
    /// List users.
    List,
    /// Change a password (your own, or anyone's as an admin). The new password is read
    /// from stdin: the second line with --user (your password is the first), else the first.
    SetPassword { name: String },
    /// Disable a user: their passwords and tokens stop working.
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
    /// Grant or take away server admin rights.
    SetAdmin {
        name: String,
        #[arg(action = clap::ArgAction::Set, value_name = "true|false")]
        admin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create a personal access token for yourself. The secret is printed alone on
    /// stdout, once; the token's id, name, scopes and expiry go to stderr.
    Create {
        name: String,
        /// What the token may do; repeatable (default: all).
        #[arg(long = "scope", value_enum)]
        scopes: Vec<TokenScope>,
        /// Lifetime in seconds (default: no expiry).
        #[arg(long, value_name = "SECONDS")]
        expires_in: Option<i64>,
    },
    /// List tokens (without their secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TokenScope {
    /// Everything its user may do.
    All,
    /// Only policy decisions (deploy gates).
    Policy,
}

#[derive(Debug, Subcommand)]
pub enum TeamsCommand {
    /// Create a team.
    Create { name: String },
    /// List teams with their members.
    List,
    /// Delete a team and its grants.
    Delete { name: String },
    /// Add a user to a team.
    AddMember { team: String, user: String },
    /// Remove a user from a team.
    RemoveMember { team: String, user: String },
}

#[derive(Debug, Subcommand)]
pub enum GrantsCommand {
    /// Grant a user or a team access to a repository.
    Add(GrantArgs),
    /// Remove a grant (the same arguments as `add`).
    Remove(GrantArgs),
    /// List the grants the caller may see.
    List,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("subject").required(true).args(["user", "team"])))]
pub struct GrantArgs {
    /// A GUN, or `prefix/*` for every repository under the prefix.
    pub repository: String,
    /// The user who gets the access.
    #[arg(long)]
    pub user: Option<String>,
    /// The team that gets the access.
    #[arg(long)]
    pub team: Option<String>,
    #[arg(long, value_enum)]
    pub access: AccessLevel,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AccessLevel {
    Read,
    Write,
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum ReposCommand {
    /// List repositories with their visibility and roles.
    List,
    /// Make a repository readable by anyone (public) or only by those granted (private).
    Visibility {
        repository: String,
        #[arg(value_enum)]
        visibility: Visibility,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
pub enum Visibility {
    Public,
    Private,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Issue a new signing key and certificate for a user (yourself, or anyone as an admin).
    Bundle {
        user: String,
        /// Write `<user>.crt`, `<user>.key` (mode 0600) and `ca.crt` into this folder
        /// instead of printing the bundle, private key included.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Register a user's own certificate (PEM).
    Register {
        user: String,
        cert_file: PathBuf,
        #[arg(long)]
        label: Option<String>,
    },
    /// List a user's keys.
    List { user: String },
    /// Revoke a user's key.
    Revoke { user: String, key_id: String },
    /// Stage new server-managed keys (server admins): for one repository, or for all,
    /// page by page. A staged key signs once a root that lists it is published.
    Rotate(RotateArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[arg(long, value_enum)]
    pub role: ServerRole,
    /// Only this repository (default: every repository).
    #[arg(long, value_name = "GUN")]
    pub repository: Option<String>,
    /// Record progress of a rotation of every repository here after each page, and
    /// resume after the last finished page when the file exists. Deleted when done.
    #[arg(long, value_name = "FILE", conflicts_with = "repository")]
    pub state_file: Option<PathBuf>,
    /// Repositories per request.
    #[arg(long, hide = true, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub page_size: u32,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ServerRole {
    Timestamp,
    Snapshot,
}

#[derive(Debug, Subcommand)]
pub enum KekCommand {
    /// Re-seal every private key under the server's current NOTARIUS_KEY_PASSPHRASE.
    Rotate,
}

/// Name of a value as the API spells it.
fn api_name(value: impl ValueEnum) -> String {
    value.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
}

/// Runs one admin command against the server.
pub async fn run(args: AdminArgs) -> Result<(), CliError> {
    let client = ApiClient::connect(&args.connection)?;
    let answer = match args.command {
        AdminCommand::Users(command) => users(&client, command).await?,
        AdminCommand::Tokens(command) => tokens(&client, command).await?,
        AdminCommand::Teams(command) => teams(&client, command).await?,
        AdminCommand::Grants(command) => grants(&client, command).await?,
        AdminCommand::Repos(command) => repos(&client, command).await?,
        AdminCommand::Keys(command) => keys(&client, command).await?,
        AdminCommand::Kek(KekCommand::Rotate) => {
            client.call(Method::POST, &["v1", "admin", "kek", "rotate"], None).await?
        }
        AdminCommand::Audit { limit } => {
            let mut url = client.url(&["v1", "audit"]);
            if let Some(limit) = limit {
                url.query_pairs_mut().append_pair("limit", &limit.to_string());
            }
            client.send(Method::GET, url, None).await?
        }
    };
    print_answer(&answer);
    Ok(())
}

async fn users(client: &ApiClient, command: UsersCommand) -> Result<Value, CliError> {
    match command {
        UsersCommand::Create { name, admin } => {
            let password = read_secret_line(&format!("password for the new user {name}"))?;
            let body = json!({ "name": name, "password": password.as_str(), "admin": admin });
            client.call(Method::POST, &["v1", "users"], Some(&body)).await
        }
        UsersCommand::List => client.call(Method::GET, &["v1", "users"], None).await,
        UsersCommand::SetPassword { name } => {
            let password = read_secret_line(&format!("new password of {name}"))?;
            patch_user(client, &name, json!({ "password": password.as_str() })).await
        }
        UsersCommand::Disable { name } => patch_user(client, &name, json!({ "disabled": true })).await,
        UsersCommand::Enable { name } => patch_user(client, &name, json!({ "disabled": false })).await,
        UsersCommand::SetAdmin { name, admin } => patch_user(client, &name, json!({ "admin": admin })).await,
    }
}

async fn patch_user(client: &ApiClient, name: &str, change: Value) -> Result<Value, CliError> {
    client.call(Method::PATCH, &["v1", "users", name], Some(&change)).await
}

async fn tokens(client: &ApiClient, command: TokensCommand) -> Result<Value, CliError> {
    match command {
        TokensCommand::Create { name, scopes, expires_in } => {
            let mut body = json!({ "name": name });
            if !scopes.is_empty() {
                body["scopes"] = json!(scopes.into_iter().map(api_name).collect::<Vec<_>>());
            }
            if let Some(seconds) = expires_in {
                body["expires_in"] = json!(seconds);
            }
            let mut token = client.call(Method::POST, &["v1", "tokens"], Some(&body)).await?;
            let secret = token
                .as_object_mut()
                .and_then(|fields| fields.remove("token"))
                .and_then(|secret| secret.as_str().map(str::to_owned))
                .context("the server's answer holds no token")?;
            // The secret alone on stdout, so `TOKEN=$(notarius admin tokens create ci)` works.
            println!("{secret}");
            eprintln!("{}", pretty(&token));
            Ok(Value::Null)
        }
        TokensCommand::List => client.call(Method::GET, &["v1", "tokens"], None).await,
        TokensCommand::Revoke { id } => client.call(Method::DELETE, &["v1", "tokens", &id], None).await,
    }
}

async fn teams(client: &ApiClient, command: TeamsCommand) -> Result<Value, CliError> {
    match command {
        TeamsCommand::Create { name } => {
            client.call(Method::POST, &["v1", "teams"], Some(&json!({ "name": name }))).await
        }
        TeamsCommand::List => client.call(Method::GET, &["v1", "teams"], None).await,
        TeamsCommand::Delete { name } => client.call(Method::DELETE, &["v1", "teams", &name], None).await,
        TeamsCommand::AddMember { team, user } => {
            client.call(Method::PUT, &["v1", "teams", &team, "members", &user], None).await
        }
        TeamsCommand::RemoveMember { team, user } => {
            client.call(Method::DELETE, &["v1", "teams", &team, "members", &user], None).await
        }
    }
}

async fn grants(client: &ApiClient, command: GrantsCommand) -> Result<Value, CliError> {
    let (method, grant) = match command {
        GrantsCommand::List => return client.call(Method::GET, &["v1", "grants"], None).await,
        GrantsCommand::Add(grant) => (Method::POST, grant),
        GrantsCommand::Remove(grant) => (Method::DELETE, grant),
    };
    let mut body = json!({ "repository": grant.repository, "access": api_name(grant.access) });
    match (grant.user, grant.team) {
        (Some(user), _) => body["user"] = json!(user),
        (None, team) => body["team"] = json!(team),
    }
    client.call(method, &["v1", "grants"], Some(&body)).await
}

async fn repos(client: &ApiClient, command: ReposCommand) -> Result<Value, CliError> {
    match command {
        ReposCommand::List => client.call(Method::GET, &["v1", "repositories"], None).await,
        ReposCommand::Visibility { repository, visibility } => {
            let body = json!({ "repository": repository, "public": visibility == Visibility::Public });
            client.call(Method::PUT, &["v1", "repositories", "visibility"], Some(&body)).await
        }
    }
}

async fn keys(client: &ApiClient, command: KeysCommand) -> Result<Value, CliError> {
    match command {
        KeysCommand::Bundle { user, out } => {
            let bundle = client.call(Method::POST, &["v1", "users", &user, "bundle"], None).await?;
            match out {
                Some(dir) => write_bundle(&dir, &user, &bundle),
                None => Ok(bundle),
            }
        }
        KeysCommand::Register { user, cert_file, label } => {
            let certificate_pem = std::fs::read_to_string(&cert_file)
                .with_context(|| format!("reading the certificate {}", cert_file.display()))?;
            let mut body = json!({ "certificate_pem": certificate_pem });
            if let Some(label) = label {
                body["label"] = json!(label);
            }
            client.call(Method::POST, &["v1", "users", &user, "keys"], Some(&body)).await
        }
        KeysCommand::List { user } => client.call(Method::GET, &["v1", "users", &user, "keys"], None).await,
        KeysCommand::Revoke { user, key_id } => {
            client.call(Method::DELETE, &["v1", "users", &user, "keys", &key_id], None).await
        }
        KeysCommand::Rotate(args) => rotate_keys(client, args).await,
    }
}

/// Writes a bundle as files a notary client can use; answers where they went.
fn write_bundle(dir: &Path, user: &str, bundle: &Value) -> Result<Value, CliError> {
    // The user name becomes a file name: it must not lead out of `dir`.
    if user.is_empty() || user.starts_with('.') || user.contains(['/', '\\']) {
        return Err(anyhow!("{user:?} cannot name a file; use --out only for plain user names").into());
    }
    let field =
        |name: &str| bundle[name].as_str().ok_or_else(|| CliError::Local(anyhow!("the server's bundle has no {name}")));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = [
        (dir.join(format!("{user}.crt")), field("cert_pem")?, 0o644),
        (dir.join(format!("{user}.key")), field("key_pem")?, 0o600),
        (dir.join("ca.crt"), field("ca_pem")?, 0o644),
    ];
    for (path, contents, mode) in &files {
        write_file(path, contents, *mode).with_context(|| format!("writing {}", path.display()))?;
    }
    let [cert, key, ca] = files.map(|(path, _, _)| path.display().to_string());
    Ok(json!({ "key_id": bundle["key_id"], "cert": cert, "key": key, "ca": ca }))
}

/// Writes `contents` with permissions `mode`, set before anything is written so a
/// private key is never readable by others, even for an instant or over an older file.
fn write_file(path: &Path, contents: &str, mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    let mut file = options.open(path)?;
    // `mode` applies to a new file only; an older one keeps its permissions otherwise.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    #[cfg(not(unix))]
    let _ = mode;
    file.write_all(contents.as_bytes())
}

/// The progress of a bulk rotation, in `--state-file`: the role, and the cursor after
/// which the next page starts.
#[derive(serde::Serialize, serde::Deserialize)]
struct RotationState {
    role: String,
    after: String,
}

impl RotationState {
    fn load(path: &Path, role: &str) -> Result<Option<String>, CliError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {}", path.display())).into()),
        };
        let state: RotationState = serde_json::from_str(&text)
            .with_context(|| format!("{} is not the state file of a key rotation", path.display()))?;
        if state.role != role {
            return Err(anyhow!(
                "{} records a rotation of {} keys; finish it with --role {} or delete the file",
                path.display(),
                state.role,
                state.role
            )
            .into());
        }
        Ok(Some(state.after))
    }

    /// Replaces the file in one step, so an interruption leaves the old cursor or the new one.
    fn save(path: &Path, role: &str, after: &str) -> Result<(), CliError> {
        let state = RotationState { role: role.to_owned(), after: after.to_owned() };
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".tmp");
        let text = serde_json::to_string(&state).context("encoding the rotation state")?;
        std::fs::write(&temporary, text)
            .and_then(|()| std::fs::rename(&temporary, path))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }
}

/// `POST /v1/admin/keys/rotate` for one repository, or page by page for all. The server
/// keeps a key already staged, so re-running a page after an interruption stages nothing new.
async fn rotate_keys(client: &ApiClient, args: RotateArgs) -> Result<Value, CliError> {
    let role = api_name(args.role);
    let path = ["v1", "admin", "keys", "rotate"];
    if let Some(repository) = &args.repository {
        return client.call(Method::POST, &path, Some(&json!({ "repository": repository, "role": role }))).await;
    }
    let state_file = args.state_file.as_deref();
    let mut after = match state_file {
        Some(file) => RotationState::load(file, &role)?,
        None => None,
    };
    if let Some(cursor) = &after {
        eprintln!("resuming the {role} key rotation after {cursor}");
    }
    let mut rotated = Vec::new();
    loop {
        let body = json!({ "role": role, "after": after, "limit": args.page_size });
        let page = client.call(Method::POST, &path, Some(&body)).await?;
        rotated.extend(page["rotated"].as_array().cloned().unwrap_or_default());
        let next = page["next"].as_str().map(str::to_owned);
        if next.is_some() && next == after {
            return Err(anyhow!("the server answered the same page twice (after {after:?}); stopping").into());
        }
        let last = next.clone().or_else(|| rotated.last().and_then(|r| r["repository"].as_str().map(str::to_owned)));
        eprintln!("rotated {} repositories (last: {})", rotated.len(), last.as_deref().unwrap_or("none"));
        match (state_file, &next) {
            (Some(file), Some(cursor)) => RotationState::save(file, &role, cursor)?,
            (Some(file), None) if file.exists() => {
                std::fs::remove_file(file).with_context(|| format!("deleting {}", file.display()))?
            }
            _ => {}
        }
        if next.is_none() {
            return Ok(json!({ "rotated": rotated, "next": null }));
        }
        after = next;
    }
}
