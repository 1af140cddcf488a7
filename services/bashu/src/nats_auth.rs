//! `bashu nats-auth`: the services' own NATS identities, and nats-server's authorization
//! generated from them and from the counties' and desks' identities in the registry, rewritten
//! and reloaded whenever one is issued or revoked (docs/security.md).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context as _;
use bashu_bus::{Bus, SERVICES, Subjects, Topology};
use bashu_registry::{NatsUsers, ServiceKey};
use futures::StreamExt;

use crate::Config;

/// What `bashu nats-auth` does.
#[derive(clap::Subcommand, Debug)]
pub enum NatsAuthCommand {
    /// Creates an nkey for every service in DIR (`<service>.nk`, the seed, mode 0600, and
    /// `<service>.pub`); keys already there are kept.
    Init {
        /// The folder; `nats.nkey_dir` of the services points at it (or at their own copy).
        #[arg(long)]
        dir: PathBuf,
    },
    /// Writes the authorization with the services only (to start nats-server the first time),
    /// or, with --from-registry, with every county and desk identity as well.
    Render {
        /// The folder with the services' `<service>.pub` files.
        #[arg(long)]
        keys: PathBuf,
        /// The file nats-server's configuration includes.
        #[arg(long)]
        out: PathBuf,
        /// Read the counties' and desks' identities from the registry (NATS must be up).
        #[arg(long)]
        from_registry: bool,
    },
    /// Keeps the authorization current: rewrites it after every issue or revocation and tells
    /// nats-server to reload (SIGHUP to the pid in --pid-file, or nothing when a sidecar such as
    /// the Helm chart's config reloader watches the file). Connects as `nats-auth`.
    Watch {
        /// The folder with the services' `<service>.pub` files.
        #[arg(long)]
        keys: PathBuf,
        /// The file nats-server's configuration includes.
        #[arg(long)]
        out: PathBuf,
        /// nats-server's pid file (its `pid_file` setting).
        #[arg(long)]
        pid_file: Option<PathBuf>,
    },
}

/// Runs one `bashu nats-auth` command.
pub async fn run(command: NatsAuthCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        NatsAuthCommand::Init { dir } => init(&dir),
        NatsAuthCommand::Render { keys, out, from_registry } => {
            let subjects = Subjects::new(&config.nats.prefix)?;
            let users = if from_registry {
                NatsUsers::open(&connect(config).await?, counties()?).await?.list().await?
            } else {
                Vec::new()
            };
            write_if_changed(&out, &bashu_registry::authorization(&subjects, &service_keys(&keys)?, &users)?)?;
            Ok(())
        }
        NatsAuthCommand::Watch { keys, out, pid_file } => watch(config, &keys, &out, pid_file.as_deref()).await,
    }
}

fn counties() -> anyhow::Result<std::sync::Arc<bashu_registry::Counties>> {
    Ok(std::sync::Arc::new(bashu_registry::Counties::builtin()?))
}

async fn connect(config: &Config) -> anyhow::Result<Bus> {
    let credentials = config.nats.credentials("nats-auth")?;
    let subjects = Subjects::new(&config.nats.prefix)?;
    Ok(Bus::connect_as(&config.nats.url, "bashu-nats-auth", &credentials, subjects, Topology::default()).await?)
}

fn init(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    for service in SERVICES {
        let seed_path = dir.join(format!("{service}.nk"));
        if seed_path.exists() {
            continue;
        }
        let pair = nkeys::KeyPair::new_user();
        let seed = pair.seed().map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&seed_path)
            .with_context(|| seed_path.display().to_string())?;
        std::io::Write::write_all(&mut file, format!("{seed}\n").as_bytes())?;
        std::fs::write(dir.join(format!("{service}.pub")), format!("{}\n", pair.public_key()))?;
        println!("{service}: {}", pair.public_key());
    }
    Ok(())
}

/// Every service's public key from `<dir>/<service>.pub`; a missing one is an error, so that a
/// service is never locked out by accident.
pub fn service_keys(dir: &Path) -> anyhow::Result<Vec<ServiceKey>> {
    SERVICES
        .iter()
        .map(|service| {
            let path = dir.join(format!("{service}.pub"));
            let public_key = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
            Ok(ServiceKey { service: (*service).to_owned(), public_key: public_key.trim().to_owned() })
        })
        .collect()
}

/// Writes `text` to `path` through a temporary file and a rename (nats-server never reads half a
/// file); true if the content changed.
fn write_if_changed(path: &Path, text: &str) -> anyhow::Result<bool> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(false);
    }
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).with_context(|| temporary.display().to_string())?;
    std::fs::rename(&temporary, path).with_context(|| path.display().to_string())?;
    Ok(true)
}

async fn watch(config: &Config, keys: &Path, out: &Path, pid_file: Option<&Path>) -> anyhow::Result<()> {
    let subjects = Subjects::new(&config.nats.prefix)?;
    let services = service_keys(keys)?;
    let users = NatsUsers::open(&connect(config).await?, counties()?).await?;
    loop {
        // Watch first, then render: a change between the two is seen by the watch.
        let mut changes = match users.bucket().watch(NatsUsers::WATCH).await {
            Ok(changes) => changes,
            Err(error) => {
                tracing::warn!(error = %error, "cannot watch NATS identities, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        loop {
            match users.list().await {
                Ok(list) => {
                    let text = bashu_registry::authorization(&subjects, &services, &list)?;
                    if write_if_changed(out, &text)? {
                        tracing::info!(identities = list.len(), path = %out.display(), "NATS authorization written");
                        if let Some(pid_file) = pid_file {
                            reload(pid_file);
                        }
                    }
                }
                Err(error) => tracing::warn!(error = %error, "cannot list NATS identities"),
            }
            // Wait for a change, then let a burst of changes settle before rendering again.
            match changes.next().await {
                Some(Ok(_)) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => break,
            }
        }
    }
}

/// Tells nats-server to reload its configuration (SIGHUP through `kill`, so that no unsafe code
/// is needed here).
fn reload(pid_file: &Path) {
    let pid = match std::fs::read_to_string(pid_file) {
        Ok(pid) => pid.trim().to_owned(),
        Err(error) => {
            tracing::warn!(path = %pid_file.display(), error = %error, "no nats-server pid to reload");
            return;
        }
    };
    match std::process::Command::new("kill").args(["-HUP", &pid]).status() {
        Ok(status) if status.success() => tracing::info!(pid = %pid, "nats-server told to reload"),
        other => tracing::warn!(pid = %pid, outcome = ?other, "nats-server could not be told to reload"),
    }
}
