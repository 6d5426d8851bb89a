//! `notarius check IMAGE --operation pull|run|service-create`: a deploy gate's question
//! from the shell. The decision is printed as JSON on stdout, a one-line verdict on
//! stderr, and the exit status is 0 for allow, 1 for deny and 2 for anything that is not
//! a decision (usage, connection, a refused request).

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use reqwest::Method;
use serde_json::json;

use super::client::{ApiClient, ConnectionArgs};
use super::{CliError, pretty};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GateOperation {
    Pull,
    Run,
    ServiceCreate,
}

impl GateOperation {
    fn as_str(self) -> &'static str {
        match self {
            GateOperation::Pull => "pull",
            GateOperation::Run => "run",
            GateOperation::ServiceCreate => "service-create",
        }
    }
}

/// Ask the server whether an image may be pulled, run or deployed.
#[derive(Debug, Args)]
#[command(after_long_help = "Exit status: 0 allowed; 1 denied; 2 no decision (bad usage, no answer, \
                              or the server refused the request). Credentials: NOTARIUS_TOKEN (a token \
                              with the policy scope) or --user with the password on stdin.")]
pub struct CheckArgs {
    /// Image reference, as docker takes it: `nginx`, `registry.example.com/team/app:v1`,
    /// `...@sha256:<hex>`.
    pub image: String,
    /// What the gate is about to do with the image.
    #[arg(long, value_enum)]
    pub operation: GateOperation,
    #[command(flatten)]
    pub connection: ConnectionArgs,
}

pub async fn run(args: CheckArgs) -> ExitCode {
    match decide(&args).await {
        Ok(allowed) => ExitCode::from(if allowed { 0 } else { 1 }),
        Err(error) => {
            eprintln!("notarius: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn decide(args: &CheckArgs) -> Result<bool, CliError> {
    let client = ApiClient::connect(&args.connection)?;
    let body = json!({ "image": args.image, "operation": args.operation.as_str() });
    let decision = client.call(Method::POST, &["v1", "policy", "check"], Some(&body)).await?;
    println!("{}", pretty(&decision));
    let allowed = decision["allowed"].as_bool().ok_or_else(|| anyhow::anyhow!("the answer has no \"allowed\""))?;
    let reasons: Vec<&str> = decision["reasons"].as_array().into_iter().flatten().filter_map(|r| r.as_str()).collect();
    eprintln!(
        "{} {} for {}: {}",
        if allowed { "ALLOWED" } else { "DENIED" },
        args.image,
        args.operation.as_str(),
        reasons.join("; ")
    );
    Ok(allowed)
}
