//! `bashu`: runs any set of Bashu's services (`--target all`, or one per pod), or the demo.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use bashu::{
    Config, Targets,
    run::{Command, MappingCommand},
};
use bashu_telemetry::LogFormat;
use clap::Parser;

/// Exit code for a configuration error (EX_CONFIG is 78; 64, EX_USAGE, is what operators grep for here).
const EXIT_CONFIG: u8 = 64;

#[derive(Parser)]
#[command(name = "bashu", version, about = "The Chengdu–Chongqing county newsroom bus")]
struct Cli {
    /// Which services to run: `all`, or a comma-separated list of ingest, moderation, distribution, admin.
    #[arg(long, default_value = "all")]
    target: Targets,
    /// A TOML configuration file; `BASHU_*` environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seconds in-flight work may take to finish after SIGTERM.
    #[arg(long, default_value_t = 20)]
    grace_seconds: u64,
    #[command(subcommand)]
    command: Option<Command>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Offline: no configuration, no runtime.
    if let Some(Command::Mapping(MappingCommand::Test { mapping, sample })) = &cli.command {
        return bashu::run::test_mapping(mapping, sample);
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("bashu: configuration error: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    // A command prints its own lines; only warnings from the libraries underneath.
    let default_filter = if cli.command.is_some() { "warn".to_owned() } else { config.log.filter.clone() };
    let filter = std::env::var("RUST_LOG").unwrap_or(default_filter);
    let format = if config.log.format == "json" { LogFormat::Json } else { LogFormat::Text };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let _telemetry = runtime
        .block_on(async { bashu_telemetry::init("bashu", &filter, format, config.tracing.otlp_endpoint.as_deref()) });
    let code = runtime.block_on(async {
        match cli.command {
            Some(command) => bashu::run::command(command, &config).await,
            None => bashu::run::serve(&cli.target, &config, Duration::from_secs(cli.grace_seconds)).await,
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}
