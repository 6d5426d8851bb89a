//! Client commands: `notarius admin ...` talks to a running server over its `/v1` API
//! (DESIGN §7). Answers are printed as JSON on stdout; failures are one line on stderr,
//! and the exit code tells scripts whether the server refused (1) or the request never
//! got an answer (2).

pub mod admin;
pub mod check;
pub mod client;
pub mod healthcheck;
pub mod policy;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;
use zeroize::Zeroizing;

/// How a client command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server answered with an error: its code, message and detail.
    #[error("{0}")]
    Refused(String),
    /// Anything before an answer: bad arguments, unreadable files or stdin, no connection.
    #[error(transparent)]
    Local(#[from] anyhow::Error),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Refused(_) => ExitCode::from(1),
            CliError::Local(_) => ExitCode::from(2),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Local(e.into())
    }
}

/// Prints the error of a finished command and turns the outcome into the exit code.
pub fn finish(outcome: Result<(), CliError>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole cause chain: "cannot reach ...: connection refused".
            eprintln!("notarius: {error:#}");
            error.exit_code()
        }
    }
}

/// Reads the next line of stdin as a secret. Several secrets come as several lines, in
/// the order the command documents; `what` names the one expected, for the prompt and
/// for the error when stdin has run out.
pub fn read_secret_line(what: &str) -> Result<Zeroizing<String>, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{what}: ");
        let _ = std::io::stderr().flush();
    }
    // Room up front, so the secret is not left behind in reallocated buffers.
    let mut line = Zeroizing::new(String::with_capacity(1024));
    let read = stdin.read_line(&mut line).with_context(|| format!("reading {what} from stdin"))?;
    let length = line.trim_end_matches(['\n', '\r']).len();
    line.truncate(length);
    if read == 0 || line.is_empty() {
        return Err(anyhow::anyhow!("expected {what} as a line on stdin").into());
    }
    Ok(line)
}

/// Pretty JSON, as every command prints it.
pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

/// Prints an answer on stdout; an empty answer (204) prints nothing.
pub fn print_answer(value: &Value) {
    if !value.is_null() {
        println!("{}", pretty(value));
    }
}
