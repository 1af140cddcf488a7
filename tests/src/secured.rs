//! The whole system under its own NATS identities, on a nats-server of its own that runs the
//! authorization `bashu nats-auth` renders, kept current by `bashu nats-auth watch`: what a county
//! or desk connecting with its issued nkey meets in production.

use std::{path::Path, sync::Arc};

use bashu::{System, Target};
use bashu_bus::{Bus, Subjects, Topology};
use bashu_proto::registry::v1::NatsUserKind;
use bashu_registry::{Counties, IssuedNatsUser, NatsUsers};
use bashu_test_support::NatsServer;
use tokio_util::sync::CancellationToken;

use crate::{test_config, workspace_binary};

/// A running secured system.
pub struct SecuredSystem {
    /// The server (its log has every permission violation).
    pub nats: NatsServer,
    /// Its client URL.
    pub url: String,
    /// The subject prefix the system runs under (empty: production's names).
    pub subjects: Subjects,
    /// The running services.
    pub system: System,
    /// An admin-identity connection, for issuing identities.
    pub admin: Bus,
    /// The services' keys (`bashu nats-auth init`).
    pub keys: tempfile::TempDir,
    shutdown: CancellationToken,
    _watcher: tokio::process::Child,
}

fn run_bashu(args: &[&str], env: &[(&str, &str)]) {
    let output = std::process::Command::new(workspace_binary("bashu"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("bashu runs");
    assert!(output.status.success(), "bashu {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

impl SecuredSystem {
    /// Starts nats-server with the first authorization, the whole system under its service
    /// identities (its test configuration changed by `configure`), and the watcher; `prefix` may
    /// be empty.
    pub async fn start(prefix: &str, configure: impl FnOnce(&mut bashu::Config)) -> Self {
        let keys = tempfile::tempdir().expect("a temporary directory");
        let keys_dir = keys.path().to_str().expect("a UTF-8 path").to_owned();
        let first = keys.path().join("first.conf");
        run_bashu(&["nats-auth", "init", "--dir", &keys_dir], &[]);
        let prefix_env = [("BASHU_NATS__PREFIX", prefix)];
        run_bashu(&["nats-auth", "render", "--keys", &keys_dir, "--out", first.to_str().unwrap()], &prefix_env);
        let nats = NatsServer::start_authorized(&std::fs::read_to_string(&first).unwrap()).await;
        let url = nats.url();

        let mut config = test_config(&url, prefix);
        config.nats.nkey_dir = Some(keys.path().to_owned());
        configure(&mut config);
        let shutdown = CancellationToken::new();
        let system = System::start(&config, &Target::ALL, shutdown.clone()).await.expect("the system starts");
        let subjects = Subjects::new(prefix).unwrap();
        let admin = Bus::connect_as(
            &url,
            "test-admin",
            &config.nats.credentials("admin").unwrap(),
            subjects.clone(),
            Topology::default(),
        )
        .await
        .unwrap();
        let auth_file = nats.authorization_file();
        let watcher = tokio::process::Command::new(workspace_binary("bashu"))
            .args(["nats-auth", "watch", "--keys", &keys_dir, "--out", auth_file.to_str().unwrap()])
            .args(["--pid-file", nats.pid_file().to_str().unwrap()])
            .env("BASHU_NATS__URL", &url)
            .env("BASHU_NATS__PREFIX", prefix)
            .env("BASHU_NATS__NKEY_DIR", &keys_dir)
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self { nats, url, subjects, system, admin, keys, shutdown, _watcher: watcher }
    }

    /// A service's seed, as `bashu nats-auth init` wrote it.
    pub fn service_seed(&self, service: &str) -> String {
        let path: &Path = self.keys.path();
        std::fs::read_to_string(path.join(format!("{service}.nk"))).unwrap().trim().to_owned()
    }

    /// Issues a NATS identity, as an operator does (`bashuctl token issue-nats`).
    pub async fn issue(&self, kind: NatsUserKind, owner: &str, label: &str) -> IssuedNatsUser {
        let users = NatsUsers::open(&self.admin, Arc::new(Counties::builtin().unwrap())).await.unwrap();
        users.issue(kind, owner, label).await.unwrap()
    }
}

impl Drop for SecuredSystem {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
