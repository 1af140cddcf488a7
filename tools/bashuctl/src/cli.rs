//! The command line: every command and argument, and which module runs each.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::{
    client::{Failure, Settings},
    coverage, credentials, desk, operations,
    output::Out,
    registry,
};

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  something else went wrong
  2  the command line (or a local file it names) is wrong
  3  not found
  4  refused: invalid input, a conflict, or not possible now
  5  unauthenticated: no token, or an unknown or revoked one
  6  permission denied: the token's role may not do this
  7  Bashu (or its bus) could not be reached

The endpoint and token come from --endpoint/--token, else BASHUCTL_ENDPOINT/BASHUCTL_TOKEN
(or BASHUCTL_TOKEN_FILE), else ~/.config/bashuctl/config.toml (endpoint, token or token_file,
ca_file, and an [endpoints] table). An https:// endpoint is checked against the system's CAs, or
--ca-file. When the services run in their own pods, review, alert issue|validate|ack, story and
coverage talk to moderation, alerts, ingest and coverage: give their addresses with
--endpoint-for SERVICE=URL (or BASHUCTL_ENDPOINT_FOR, comma-separated, or [endpoints]).";

/// Runs Bashu: counties, alliances, credentials, review, alerts, the bus, replay and reports.
#[derive(Parser)]
#[command(name = "bashuctl", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    /// The admin gRPC endpoint [default: http://127.0.0.1:50051].
    #[arg(long, global = true, env = "BASHUCTL_ENDPOINT")]
    endpoint: Option<String>,
    /// SERVICE=URL: where moderation, alerts, ingest or coverage listen, when not at --endpoint.
    #[arg(long, global = true, env = "BASHUCTL_ENDPOINT_FOR", value_delimiter = ',', value_name = "SERVICE=URL")]
    endpoint_for: Vec<String>,
    /// A staff token.
    #[arg(long, global = true, env = "BASHUCTL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// A file holding the staff token.
    #[arg(long, global = true, env = "BASHUCTL_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// The config file [default: ~/.config/bashuctl/config.toml].
    #[arg(long, global = true, env = "BASHUCTL_CONFIG")]
    config: Option<PathBuf>,
    /// The CA certificate (PEM) of an https endpoint not signed by a CA the system trusts.
    #[arg(long, global = true, env = "BASHUCTL_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Print answers as JSON (the API's JSON mapping) instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Counties: look up, list, their settings.
    #[command(subcommand)]
    County(registry::CountyCommand),
    /// Alliances and their members.
    #[command(subcommand)]
    Alliance(registry::AllianceCommand),
    /// Bilateral partnerships.
    #[command(subcommand)]
    Partnership(registry::PartnershipCommand),
    /// Emergency desks and their areas.
    #[command(subcommand)]
    Desk(registry::DeskCommand),
    /// A county's subscription.
    #[command(subcommand)]
    Subscription(registry::SubscriptionCommand),
    /// A county's webhook.
    #[command(subcommand)]
    Webhook(registry::WebhookCommand),
    /// County tokens, staff tokens and desk keys.
    #[command(subcommand)]
    Token(credentials::TokenCommand),
    /// The review queue (三审).
    #[command(subcommand)]
    Review(desk::ReviewCommand),
    /// Alerts: the board, one chain's counties, issue, validate, acknowledge.
    #[command(subcommand)]
    Alert(desk::AlertCommand),
    /// Submit a story as a county.
    #[command(subcommand)]
    Story(desk::StoryCommand),
    /// Withdrawn stories and who confirmed the takedown.
    Takedowns {
        /// Only stories some receiver has not confirmed.
        #[arg(long)]
        missing: bool,
    },
    /// Moderation's rules.
    #[command(subcommand)]
    Rules(operations::RulesCommand),
    /// Streams, consumers and the counties that are not reading.
    Bus {
        #[command(subcommand)]
        command: BusCommand,
    },
    /// Dead letters: list, show, requeue, discard.
    #[command(subcommand)]
    Dlq(operations::DeadLetterCommand),
    /// Re-deliver a story, or a time range, to one county.
    Replay(operations::ReplayArgs),
    /// The collaboration report (考核) for a period.
    Report(operations::ReportArgs),
    /// The shared content pool's indexes (one per distribution replica).
    #[command(subcommand)]
    Pool(operations::PoolCommand),
    /// Joint coverage plans (协同报道): list, one plan's chain, settle a closed plan.
    #[command(subcommand)]
    Coverage(coverage::CoverageCommand),
    /// The audit log of admin changes, newest first.
    Audit {
        /// How many changes, newest first (at most 1000).
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Prints a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum BusCommand {
    /// Per stream and consumer: pending, unacknowledged, redelivered, silence.
    Health {
        /// A county consumer silent this long with messages waiting is "not reading".
        #[arg(long, default_value_t = 3600)]
        silent_after: u32,
    },
}

pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    let out = Out { json: cli.json };
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "bashuctl", &mut std::io::stdout());
        return Ok(());
    }
    let settings =
        Settings::resolve(cli.endpoint, cli.endpoint_for, cli.token, cli.token_file, cli.config, cli.ca_file)?;
    if let Command::Story(command) = cli.command {
        // A county acts with its own token, not a staff token.
        return desk::story(settings.for_service("ingest").channel().await?, out, command).await;
    }
    let settings = match &cli.command {
        Command::Review(_) => settings.for_service("moderation"),
        Command::Alert(command) if command.is_the_desks() => settings.for_service("alerts"),
        Command::Coverage(_) => settings.for_service("coverage"),
        _ => settings,
    };
    let channel = settings.connect().await?;
    match cli.command {
        Command::County(command) => registry::county(channel, out, command).await,
        Command::Alliance(command) => registry::alliance(channel, out, command).await,
        Command::Partnership(command) => registry::partnership(channel, out, command).await,
        Command::Desk(command) => registry::desk(channel, out, command).await,
        Command::Subscription(command) => registry::subscription(channel, out, command).await,
        Command::Webhook(command) => registry::webhook(channel, out, command).await,
        Command::Token(command) => credentials::token(channel, out, command).await,
        Command::Review(command) => desk::review(channel, out, command).await,
        Command::Alert(command) => desk::alert(channel, out, command).await,
        Command::Takedowns { missing } => operations::takedowns(channel, out, missing).await,
        Command::Rules(command) => operations::rules(channel, out, command).await,
        Command::Bus { command: BusCommand::Health { silent_after } } => {
            operations::bus_health(channel, out, silent_after).await
        }
        Command::Dlq(command) => operations::dead_letters(channel, out, command).await,
        Command::Replay(args) => operations::replay(channel, out, args).await,
        Command::Report(args) => operations::report(channel, out, args).await,
        Command::Audit { limit } => operations::audit(channel, out, limit).await,
        Command::Pool(command) => operations::pool(channel, out, command).await,
        Command::Coverage(command) => coverage::coverage(channel, out, command).await,
        Command::Completions { .. } | Command::Story(_) => unreachable!("handled above"),
    }
}

/// The token given most explicitly: a command-line flag beats the environment, and between
/// the two kinds (`--token`, `--token-file`) the one on the command line wins.
pub(crate) fn explicit_token(matches: &clap::ArgMatches, cli: &mut Cli) {
    use clap::parser::ValueSource::CommandLine;
    let from_line = |id: &str| matches.value_source(id) == Some(CommandLine);
    if from_line("token_file") && !from_line("token") {
        cli.token = None;
    } else if cli.token.is_some() {
        cli.token_file = None;
    }
}

#[cfg(test)]
mod help_tests {
    use super::*;

    /// Every command and every argument says what it is for in `--help`.
    #[test]
    fn every_command_and_argument_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            if command.get_about().is_none() {
                missing.push(path.clone());
            }
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() {
                    missing.push(format!("{path} <{}>", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let command = Cli::command();
        command.clone().debug_assert();
        let mut missing = Vec::new();
        walk(&command, "", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:#?}");
    }

    /// Every `bashuctl …` command a help text names exists.
    #[test]
    fn help_names_only_commands_that_exist() {
        fn texts(command: &clap::Command, out: &mut Vec<String>) {
            out.extend(command.get_about().map(ToString::to_string));
            out.extend(command.get_after_help().map(ToString::to_string));
            out.extend(command.get_arguments().filter_map(|a| a.get_help()).map(ToString::to_string));
            for sub in command.get_subcommands() {
                texts(sub, out);
            }
        }
        let root = Cli::command();
        let mut all = Vec::new();
        texts(&root, &mut all);
        for text in all {
            for mention in text.split("`bashuctl ").skip(1) {
                let words: Vec<&str> = mention.split('`').next().unwrap_or("").split_whitespace().collect();
                let mut command = &root;
                for word in words.iter().take_while(|w| !w.starts_with('-') && !w.starts_with('<')) {
                    match command.find_subcommand(word) {
                        Some(sub) => command = sub,
                        None if command.has_subcommands() => panic!("{text:?} names `bashuctl {}`", words.join(" ")),
                        None => break,
                    }
                }
            }
        }
    }
}
