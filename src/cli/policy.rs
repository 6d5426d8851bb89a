//! `notarius policy lint DIR`: checks policy files offline, as the server would load them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::policy::files::{DefaultAction, load_dir};

const POLICY_HELP: &str = "\
Exit status: 0 the files load; 1 a file has errors (each printed on stderr as
`file:line: field: message`); 2 bad usage or DIR is not a folder.";

/// Signing-policy files.
#[derive(Debug, Args)]
#[command(after_long_help = POLICY_HELP)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check every *.toml directly in DIR (not subfolders), as the server loads them.
    Lint {
        /// The policies folder, e.g. ./policies.
        dir: PathBuf,
    },
}

pub fn run(args: PolicyArgs) -> ExitCode {
    match args.command {
        PolicyCommand::Lint { dir } => lint(&dir),
    }
}

fn lint(dir: &std::path::Path) -> ExitCode {
    if !dir.is_dir() {
        let why = if dir.exists() { "not a folder" } else { "no such folder" };
        eprintln!("notarius: policy lint: {}: {why}", dir.display());
        return ExitCode::from(2);
    }
    match load_dir(dir, 1) {
        Ok(set) => {
            println!("ok: {} rules from {} files (digest {})", set.rules.len(), set.files.len(), set.digest);
            if set.content_trust && set.default == DefaultAction::Deny && set.rules.is_empty() {
                eprintln!(
                    "note: content trust is on, the default is deny and there are no rules: every image is denied"
                );
            }
            if !set.content_trust {
                eprintln!("note: content_trust = false: every check allows");
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("{error}");
            }
            eprintln!("{} error{} in {}", errors.len(), if errors.len() == 1 { "" } else { "s" }, dir.display());
            ExitCode::from(1)
        }
    }
}
