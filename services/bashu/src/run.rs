//! How `bashu` runs: the services until a signal stops them (the first SIGINT or SIGTERM
//! finishes the work in hand within the grace period, a second exits at once), and the offline
//! `bashu mapping test`.

use std::{process::ExitCode, time::Duration};

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::{Config, Targets, demo, nats_auth};

/// What `bashu` does besides running services.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Submits demo stories over HTTP and prints what arrives in some counties' feeds.
    Demo(demo::DemoArgs),
    /// Works with ingest mapping adapters offline.
    #[command(subcommand)]
    Mapping(MappingCommand),
    /// NATS identities and nats-server's generated authorization (docs/security.md).
    #[command(subcommand)]
    NatsAuth(nats_auth::NatsAuthCommand),
}

/// `bashu mapping …`.
#[derive(clap::Subcommand)]
pub enum MappingCommand {
    /// Applies a mapping file to a sample payload and prints the Story it makes, or every
    /// problem with its field path (exit 65). Nothing is submitted; no system is needed.
    Test {
        /// The mapping file (JSON).
        #[arg(long)]
        mapping: std::path::PathBuf,
        /// A payload in the platform's or CMS's own JSON.
        #[arg(long)]
        sample: std::path::PathBuf,
    },
}

/// Runs a command to its end; failures are printed, named by the command.
pub async fn command(command: Command, config: &Config) -> ExitCode {
    let (name, outcome) = match command {
        Command::Demo(args) => ("bashu demo", demo::run(args, config).await),
        Command::NatsAuth(command) => ("bashu nats-auth", nats_auth::run(command, config).await),
        Command::Mapping(MappingCommand::Test { mapping, sample }) => return test_mapping(&mapping, &sample),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exit code for input that is not valid (EX_DATAERR).
const EXIT_DATA: u8 = 65;

/// Applies a mapping file to a sample payload: prints the Story it makes, or every problem with
/// its field path (exit 65).
pub fn test_mapping(mapping: &std::path::Path, sample: &std::path::Path) -> ExitCode {
    let read = |path: &std::path::Path| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    let (mapping, sample) = match (read(mapping), read(sample)) {
        (Ok(mapping), Ok(sample)) => (mapping, sample),
        (Err(error), _) | (_, Err(error)) => {
            eprintln!("bashu mapping test: {error}");
            return ExitCode::FAILURE;
        }
    };
    let counties = bashu_registry::Counties::builtin().expect("the built-in registry");
    match bashu_ingest::mapping::dry_run(&mapping, &sample, &counties) {
        Ok(story) => {
            println!("{}", serde_json::to_string_pretty(&story).expect("a story serialises"));
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for problem in problems {
                eprintln!(
                    "{}: {}",
                    if problem.field.is_empty() { "(document)" } else { &problem.field },
                    problem.reason
                );
            }
            ExitCode::from(EXIT_DATA)
        }
    }
}

/// Runs `targets` until a signal stops them; the exit code says whether they stopped in time.
pub async fn serve(targets: &Targets, config: &Config, grace: Duration) -> ExitCode {
    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));
    let system = loop {
        // Each attempt has its own token, so what a failed attempt started stops with it.
        let attempt = shutdown.child_token();
        match crate::System::start(config, &targets.0, attempt.clone()).await {
            Ok(system) => break system,
            // The bus slow or away at start-up (a JetStream request timing out on a loaded
            // server): try again, as the services retry everything else, rather than exit.
            Err(error) if error.is_transient() && !shutdown.is_cancelled() => {
                attempt.cancel();
                tracing::warn!(error = %bashu_bus::error_chain(&error), "bashu could not start yet; trying again");
                tokio::select! {
                    _ = shutdown.cancelled() => return ExitCode::FAILURE,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Err(error) => {
                tracing::error!(error = %error, "bashu could not start");
                return ExitCode::FAILURE;
            }
        }
    };
    if let (Some(path), false) = (&config.registry.demo_credentials_file, system.demo.desks.is_empty()) {
        let written = serde_json::to_vec_pretty(&system.demo)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(path, json));
        match written {
            Ok(()) => tracing::info!(path = %path.display(), "demo credentials written"),
            Err(error) => tracing::warn!(path = %path.display(), error = %error, "demo credentials not written"),
        }
    }
    if system.stopped(grace).await {
        tracing::info!("bashu stopped");
        ExitCode::SUCCESS
    } else {
        tracing::warn!(grace_seconds = grace.as_secs(), "in-flight work did not finish within the grace period");
        ExitCode::FAILURE
    }
}

/// The first SIGINT or SIGTERM starts a graceful shutdown; a second one exits at once.
async fn watch_signals(shutdown: CancellationToken) {
    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    for received in 0.. {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        if received > 0 {
            eprintln!("bashu: second signal, exiting now");
            std::process::exit(130);
        }
        tracing::info!("shutting down: finishing in-flight work");
        shutdown.cancel();
    }
}
