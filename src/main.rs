//! tgpulse binary: parse arguments, set up logging, run, print the error chain.

use std::process::ExitCode;

use clap::Parser;
use tgpulse::cli::{self, Cli};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Cli::parse();
    tgpulse::telemetry::init_logs(&args.log, args.log_format);
    match cli::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
