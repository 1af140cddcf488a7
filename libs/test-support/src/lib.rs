//! Real `nats-server` processes with JetStream for Bashu's tests: one server or a three-node
//! cluster, each on free loopback ports with a temporary store, stoppable, killable (-9) and
//! restartable on the same port and store. Never a mock.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use tempfile::TempDir;

/// Where `make` installs the pinned nats-server when none is on `PATH`.
const PROJECT_LOCAL_NATS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.tools/nats/bin/nats-server");

/// The nats-server binary: on `PATH`, else the project-local one. Panics loudly when neither
/// exists, because a test that cannot reach a real server must fail, not skip.
pub fn nats_server_binary() -> PathBuf {
    let local = Path::new(PROJECT_LOCAL_NATS);
    if local.exists() {
        return local.to_path_buf();
    }
    if let Some(on_path) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file())
    {
        return on_path;
    }
    panic!(
        "nats-server not found on PATH nor at {PROJECT_LOCAL_NATS}: run `make tools` (or `make test`, which installs it)"
    )
}

/// A free TCP port on loopback, as the OS hands it out.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("ephemeral port").port()
}

/// The largest message nats-server takes, as Bashu's deployments set it (k8s/nats/values.yaml,
/// scripts/run-local.sh): an accepted alert carries its CAP document twice (the signed bytes and
/// the parsed alert), and a real agency alert with embedded resources is close to 1 MiB.
pub const MAX_PAYLOAD: &str = "4MB";

/// One nats-server with JetStream, alive until dropped (then killed and its store removed).
pub struct NatsServer {
    port: u16,
    cluster: Option<ClusterMembership>,
    /// With authorization: the configuration file (which includes `auth.conf` beside it).
    config: Option<PathBuf>,
    store: TempDir,
    child: Option<Child>,
}

#[derive(Clone)]
struct ClusterMembership {
    name: String,
    server_name: String,
    cluster_port: u16,
    routes: Vec<u16>,
}

impl NatsServer {
    /// Starts a single server on a free port with a fresh store and waits until JetStream answers.
    pub async fn start() -> Self {
        let server = Self::spawn_unready(None);
        server.wait_ready().await;
        server
    }

    fn spawn_unready(cluster: Option<ClusterMembership>) -> Self {
        let store = tempfile::Builder::new().prefix("bashu-nats-").tempdir().expect("temporary store");
        let mut server = Self { port: free_port(), cluster, config: None, store, child: None };
        server.spawn_process();
        server
    }

    fn spawn_process(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.store.path().join("server.log"))
            .expect("server log");
        let mut command = Command::new(nats_server_binary());
        command
            .arg("--jetstream")
            .args(["--addr", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--store_dir")
            .arg(self.store.path().join("js"))
            .stdout(Stdio::null())
            .stderr(log);
        let config = self.config.clone().unwrap_or_else(|| {
            let base = self.store.path().join("base.conf");
            std::fs::write(&base, format!("max_payload: {MAX_PAYLOAD}\n")).expect("base.conf");
            base
        });
        command.arg("--config").arg(config);
        if let Some(cluster) = &self.cluster {
            let routes =
                cluster.routes.iter().map(|port| format!("nats://127.0.0.1:{port}")).collect::<Vec<_>>().join(",");
            command
                .args(["--server_name", &cluster.server_name])
                .args(["--cluster_name", &cluster.name])
                .args(["--cluster", &format!("nats://127.0.0.1:{}", cluster.cluster_port)])
                .args(["--routes", &routes]);
        }
        self.child = Some(command.spawn().expect("spawn nats-server"));
    }

    /// Starts a single server whose authorization is `authorization` (an `authorization { … }`
    /// block, as `bashu nats-auth render` writes it, kept in [`NatsServer::authorization_file`])
    /// and waits until it is ready. Clients then need an identity the block knows.
    pub async fn start_authorized(authorization: &str) -> Self {
        Self::start_with_config(Some(authorization), "").await
    }

    /// Starts a single server with `authorization` (if any, kept in `auth.conf`) and `extra`
    /// configuration lines (a `tls { … }` block, say), and waits until it says it is ready.
    pub async fn start_with_config(authorization: Option<&str>, extra: &str) -> Self {
        let store = tempfile::Builder::new().prefix("bashu-nats-").tempdir().expect("temporary store");
        let config = store.path().join("server.conf");
        let pid = store.path().join("nats-server.pid");
        let mut text = format!("pid_file: {:?}\nmax_payload: {MAX_PAYLOAD}\n{extra}\n", pid.display().to_string());
        if let Some(authorization) = authorization {
            std::fs::write(store.path().join("auth.conf"), authorization).expect("auth.conf");
            text.push_str("include \"auth.conf\"\n");
        }
        std::fs::write(&config, text).expect("server.conf");
        let mut server = Self { port: free_port(), cluster: None, config: Some(config), store, child: None };
        server.spawn_process();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !server.log().contains("Server is ready") {
            assert!(std::time::Instant::now() < deadline, "nats-server not ready after 30 s; log:\n{}", server.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    /// The authorization file a server started with [`NatsServer::start_authorized`] includes.
    pub fn authorization_file(&self) -> PathBuf {
        self.store.path().join("auth.conf")
    }

    /// The pid file of a server started with [`NatsServer::start_authorized`].
    pub fn pid_file(&self) -> PathBuf {
        self.store.path().join("nats-server.pid")
    }

    /// The server's process id while it runs (for a benchmark's CPU figures).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The client URL, `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The server's log so far, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.store.path().join("server.log")).unwrap_or_default()
    }

    /// A new client connection that retries its connection forever (as services do).
    pub async fn connect(&self) -> async_nats::Client {
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(self.url())
            .await
            .expect("connect to the test nats-server")
    }

    /// kill -9: no flush, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (lame-duck free shutdown) and wait for the process to end.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same port and store, after `kill` or `stop`.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a server that is stopped");
        self.spawn_process();
        self.wait_ready().await;
    }

    /// Waits until the server accepts connections and its JetStream answers an account query.
    pub async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(client) = async_nats::connect(self.url()).await {
                let js = async_nats::jetstream::new(client);
                if js.query_account().await.is_ok() {
                    return;
                }
            }
            if tokio::time::Instant::now() > deadline {
                panic!("nats-server on port {} not ready after 30 s; log:\n{}", self.port, self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A three-node JetStream cluster on loopback.
pub struct NatsCluster {
    /// The nodes; index them to kill or restart one.
    pub nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts three routed nodes and waits until JetStream answers through each of them.
    pub async fn start() -> Self {
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let name = format!("bashu-test-{}", free_port());
        let nodes: Vec<NatsServer> = (0..3)
            .map(|i| {
                NatsServer::spawn_unready(Some(ClusterMembership {
                    name: name.clone(),
                    server_name: format!("n{}", i + 1),
                    cluster_port: cluster_ports[i],
                    routes: cluster_ports.iter().copied().filter(|p| *p != cluster_ports[i]).collect(),
                }))
            })
            .collect();
        for node in &nodes {
            node.wait_ready().await;
        }
        Self { nodes }
    }

    /// Client URLs of every node, for a client that fails over between them.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::url).collect()
    }

    /// A client that knows every node and reconnects to whichever is alive.
    pub async fn connect(&self) -> async_nats::Client {
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(
                self.urls()
                    .iter()
                    .map(|url| url.parse::<async_nats::ServerAddr>().expect("node url"))
                    .collect::<Vec<_>>(),
            )
            .await
            .expect("connect to the test cluster")
    }
}
