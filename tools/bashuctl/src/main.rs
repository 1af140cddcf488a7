//! bashuctl: the operators' command line over Bashu's gRPC admin API (registry, credentials,
//! review, alerts, bus health, dead letters, replay, the collaboration report, the audit log).

mod cli;
mod client;
mod coverage;
mod credentials;
mod desk;
mod operations;
mod output;
mod registry;

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::Cli;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    cli::explicit_token(&matches, &mut cli);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bashuctl: cannot start: {error}");
            return ExitCode::from(client::exit::OTHER);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("bashuctl: {}", failure.message);
            failure.exit_code()
        }
    }
}
