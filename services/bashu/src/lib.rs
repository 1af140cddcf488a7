//! The one Bashu binary's library: configuration, and [`System`], which starts any set of
//! Bashu's services in one process behind one HTTP and one gRPC listener (as `bashu --target all`
//! does locally and one target per pod does in Kubernetes). Tests start it in-process.

pub mod config;
pub mod demo;
pub mod nats_auth;
mod observe;
pub mod run;
mod targets;

use std::{net::SocketAddr, str::FromStr, sync::Arc, time::Duration};

use axum::Router;
use bashu_bus::{Bus, Subjects, Topology};
use bashu_registry::{Counties, RegistryStore};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::{error, info};

pub use config::Config;

/// An HTTP client for Bashu's own tools (the demo, the tests, the bench). rustls needs one
/// process-wide crypto provider; ring is the one async-nats already uses.
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A service the binary can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// Story submission (HTTP and gRPC).
    Ingest,
    /// Moderation decisions.
    Moderation,
    /// Audience resolution and county feeds.
    Distribution,
    /// The operators' gRPC API.
    Admin,
    /// Emergency alerts: intake, fan-out, tracking and escalation.
    Alerts,
    /// Joint coverage plans, their contribution ledger and settlements.
    Coverage,
}

impl Target {
    /// Every target, as `--target all` runs them.
    pub const ALL: [Target; 6] =
        [Target::Ingest, Target::Moderation, Target::Distribution, Target::Admin, Target::Alerts, Target::Coverage];

    fn name(self) -> &'static str {
        match self {
            Target::Ingest => "ingest",
            Target::Moderation => "moderation",
            Target::Distribution => "distribution",
            Target::Admin => "admin",
            Target::Alerts => "alerts",
            Target::Coverage => "coverage",
        }
    }
}

/// Parses `all` or a comma-separated list such as `ingest,moderation`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets(pub Vec<Target>);

impl FromStr for Targets {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        let mut targets = Vec::new();
        for name in value.split(',').map(str::trim) {
            match name {
                "all" => targets.extend(Target::ALL),
                other => targets.push(*Target::ALL.iter().find(|t| t.name() == other).ok_or_else(|| {
                    format!("unknown target {other:?}: all, ingest, moderation, distribution, admin, alerts, coverage")
                })?),
            }
        }
        targets.sort();
        targets.dedup();
        Ok(Targets(targets))
    }
}

/// Why the system could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bus failed (connection, provisioning).
    #[error(transparent)]
    Bus(#[from] bashu_bus::Error),
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] bashu_registry::Error),
    /// Ingest could not be built.
    #[error(transparent)]
    Ingest(#[from] bashu_ingest::Error),
    /// Moderation could not be built.
    #[error(transparent)]
    Moderation(#[from] bashu_moderation::Error),
    /// Distribution could not be built.
    #[error(transparent)]
    Distribution(#[from] bashu_distribution::BuildError),
    /// The alert service could not be built.
    #[error(transparent)]
    Alerts(#[from] bashu_alerts::Error),
    /// The coverage service could not be built.
    #[error(transparent)]
    Coverage(#[from] bashu_coverage::Error),
    /// The reflection service could not read the descriptors.
    #[error("grpc reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// A service's NATS identity (its nkey seed) could not be read.
    #[error("the NATS identity of {service}")]
    NatsIdentity {
        /// The service.
        service: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file could not be read.
    #[error("cannot read TLS file {path}")]
    Tls {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS identity was refused.
    #[error("grpc.tls: {0}")]
    TlsConfig(String),
    /// A listener could not be bound.
    #[error("cannot listen on {address}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Whether starting again may succeed: the bus (or a bucket behind a registry, a service's
    /// store) failed, not the configuration, a certificate or a listener.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Bus(error) => error.is_transient(),
            Error::Distribution(bashu_distribution::BuildError::Bus(error)) => error.is_transient(),
            Error::Registry(bashu_registry::Error::Bus(error))
            | Error::Ingest(bashu_ingest::Error::Bus(error))
            | Error::Moderation(bashu_moderation::Error::Bus(error))
            | Error::Alerts(bashu_alerts::Error::Bus(error)) => error.is_transient(),
            Error::Registry(bashu_registry::Error::Store { .. })
            | Error::Ingest(bashu_ingest::Error::Store(_))
            | Error::Moderation(bashu_moderation::Error::Store(_))
            | Error::Alerts(bashu_alerts::Error::Store(_)) => true,
            Error::Coverage(error) => error.is_transient(),
            Error::Registry(_)
            | Error::Ingest(_)
            | Error::Moderation(_)
            | Error::Alerts(_)
            | Error::Distribution(_)
            | Error::Reflection(_)
            | Error::NatsIdentity { .. }
            | Error::Tls { .. }
            | Error::TlsConfig(_)
            | Error::Listen { .. } => false,
        }
    }
}

/// A running set of services.
pub struct System {
    /// Where the HTTP listener is bound.
    pub http_addr: SocketAddr,
    /// Where the gRPC listener is bound.
    pub grpc_addr: SocketAddr,
    /// With `registry.seed_demo`: the demo desks' keys and the demo counties' credentials.
    pub demo: demo::Seeded,
    /// The registry as every service of this process sees it (a live view of the bucket).
    pub registry: bashu_registry::RegistryView,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl System {
    /// Connects, provisions the bus, loads the registry and starts `targets`. Everything stops
    /// when `shutdown` is cancelled; [`System::stopped`] waits for that.
    pub async fn start(config: &Config, targets: &[Target], shutdown: CancellationToken) -> Result<Self, Error> {
        let subjects = Subjects::new(&config.nats.prefix)?;
        let topology = Topology { replicas: config.nats.replicas };
        // Each service connects as itself when nats.nkey_dir is set (docs/security.md).
        let connect = |name: &'static str, identity: &'static str| {
            let (subjects, topology) = (subjects.clone(), topology.clone());
            async move {
                let credentials = config
                    .nats
                    .credentials(identity)
                    .map_err(|source| Error::NatsIdentity { service: identity, source })?;
                Ok::<_, Error>(Bus::connect_as(&config.nats.url, name, &credentials, subjects, topology).await?)
            }
        };
        // The process's shared connection (provisioning, the registry, credentials) acts as admin
        // when admin runs here (it writes the registry), else as the process's one service.
        let control_identity =
            if targets.contains(&Target::Admin) { "admin" } else { targets.first().map_or("admin", |t| t.name()) };
        let control = connect("bashu-control", control_identity).await?;
        control.provision().await?;
        let counties = Arc::new(Counties::builtin()?);
        let store = RegistryStore::open(&control, counties.clone()).await?;
        // Tokens are checked from memory, kept current by one watch of the credentials per process.
        let credentials = bashu_registry::CredentialCache::open(&control).await?;
        let tokens =
            bashu_registry::CountyTokens::open(&control, counties.clone()).await?.with_cache(credentials.clone());
        let mut demo = demo::Seeded::default();
        if config.registry.seed_demo {
            let nats_users = bashu_registry::NatsUsers::open(&control, counties.clone()).await?;
            demo = demo::seed(&store, &tokens, &nats_users).await?;
            info!("demo registry seed written");
        }
        let registry = store.watch(shutdown.clone()).await?;

        // Every staff token (the bootstrap operator, configured reviewers, issued tokens) is
        // checked by one guard in front of the admin and review services.
        let statics = config
            .admin
            .bootstrap_operator()
            .into_iter()
            .chain(config.moderation.reviewers.iter().map(|r| r.as_staff()))
            .collect();
        let staff = bashu_registry::StaffTokens::open(&control, statics).await?.with_cache(credentials.clone());
        let guard = bashu_admin::Guard::new(staff.clone());

        let tracker = TaskTracker::new();
        tracker.spawn(credentials.follow(shutdown.clone()));
        let view = registry.clone();
        let shared =
            targets::Shared { config, counties, store, registry, tokens, staff, guard, shutdown: shutdown.clone() };
        let mut http = Router::new();
        let mut grpc = targets::GrpcServices::default();
        let mut consumers = Vec::new();
        let mut operator_view = None;
        for &target in targets {
            // Each service has a connection of its own, as it would in its own pod.
            let service = target.build(&shared, connect(target.name(), target.name()).await?).await?;
            http = http.merge(service.routes());
            service.grpc(&shared.guard, &mut grpc);
            consumers.extend(service.consumers(&control));
            operator_view = operator_view.or(service.operator_view());
            let (name, work) = (target.name(), service.run(shutdown.clone()));
            tracker.spawn(async move {
                if let Err(error) = work.await {
                    error!(service = name, error = %error, "service stopped with an error");
                }
            });
            info!(target = name, "service started");
        }
        let targets::GrpcServices { routes: grpc, serving } = grpc;
        let (health, health_service) = tonic_health::server::health_reporter();
        let grpc = with_reflection(grpc.add_service(health_service))?;
        for name in &serving {
            health.set_service_status(*name, tonic_health::ServingStatus::Serving).await;
        }
        tracker.spawn(report_nats_health(health, control.clone(), serving, shutdown.clone()));

        // After the merge: a target with no HTTP routes of its own (admin) still has the probes.
        let http = http
            .merge(observe::routes(control, consumers, operator_view))
            .route_layer(axum::middleware::from_fn(observe::count_http));
        let http_addr = serve_http(&tracker, config.http.listen, http, shutdown.clone()).await?;
        let tls = config.grpc.tls.as_ref().map(server_tls).transpose()?;
        let grpc_addr = serve_grpc(&tracker, config.grpc.listen, tls, grpc, shutdown.clone()).await?;
        tracker.close();
        info!(%http_addr, %grpc_addr, "bashu ready");
        Ok(Self { http_addr, grpc_addr, demo, registry: view, tracker, shutdown })
    }

    /// Waits until every task has stopped after shutdown, or `grace` has passed; true if all stopped.
    pub async fn stopped(&self, grace: Duration) -> bool {
        self.shutdown.cancelled().await;
        tokio::time::timeout(grace, self.tracker.wait()).await.is_ok()
    }
}

/// Server reflection (v1 and the v1alpha that older tools ask for) over every Bashu `.proto`,
/// so generic gRPC clients need no copy of our files.
fn with_reflection(routes: tonic::service::Routes) -> Result<tonic::service::Routes, Error> {
    let configure = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(bashu_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    Ok(routes.add_service(configure().build_v1()?).add_service(configure().build_v1alpha()?))
}

/// The gRPC health service follows the NATS connection: every service is NOT_SERVING while
/// it is down, so a generic gRPC health probe sees what `/readyz` sees.
async fn report_nats_health(
    health: tonic_health::server::HealthReporter,
    bus: Bus,
    services: Vec<&'static str>,
    shutdown: CancellationToken,
) {
    let mut was_connected = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let connected = bus.is_connected();
        if connected != was_connected {
            let status =
                if connected { tonic_health::ServingStatus::Serving } else { tonic_health::ServingStatus::NotServing };
            health.set_service_status("", status).await;
            for name in &services {
                health.set_service_status(*name, status).await;
            }
            was_connected = connected;
        }
    }
    for name in std::iter::once(&"").chain(&services) {
        health.set_service_status(*name, tonic_health::ServingStatus::NotServing).await;
    }
}

async fn serve_http(
    tracker: &TaskTracker,
    address: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
) -> Result<SocketAddr, Error> {
    let listener = TcpListener::bind(address).await.map_err(|source| Error::Listen { address, source })?;
    let bound = listener.local_addr().map_err(|source| Error::Listen { address, source })?;
    tracker.spawn(async move {
        let served = axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        if let Err(error) = served {
            error!(error = %error, "http server failed");
        }
    });
    Ok(bound)
}

/// The server's TLS identity from its PEM files.
fn server_tls(files: &config::TlsConfig) -> Result<tonic::transport::ServerTlsConfig, Error> {
    let read =
        |path: &std::path::Path| std::fs::read(path).map_err(|source| Error::Tls { path: path.to_owned(), source });
    let identity = tonic::transport::Identity::from_pem(read(&files.cert_file)?, read(&files.key_file)?);
    Ok(tonic::transport::ServerTlsConfig::new().identity(identity))
}

async fn serve_grpc(
    tracker: &TaskTracker,
    address: SocketAddr,
    tls: Option<tonic::transport::ServerTlsConfig>,
    routes: tonic::service::Routes,
    shutdown: CancellationToken,
) -> Result<SocketAddr, Error> {
    let listener = TcpListener::bind(address).await.map_err(|source| Error::Listen { address, source })?;
    let bound = listener.local_addr().map_err(|source| Error::Listen { address, source })?;
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let mut server = tonic::transport::Server::builder().layer(observe::CountGrpcLayer);
    if let Some(tls) = tls {
        server = server.tls_config(tls).map_err(|e| Error::TlsConfig(e.to_string()))?;
    }
    tracker.spawn(async move {
        let served = server.add_routes(routes).serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned()).await;
        if let Err(error) = served {
            error!(error = %error, "grpc server failed");
        }
    });
    Ok(bound)
}
