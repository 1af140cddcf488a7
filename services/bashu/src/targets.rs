//! Each service as the process runs it. [`Target::build`] makes a service on its own bus
//! connection from what every service of the process shares ([`Shared`]); what it serves, what
//! it reads and its work are then the [`Service`] trait's, and
//! [`System::start`](crate::System::start) is a loop that builds each target and wires it in.

use std::sync::Arc;

use axum::Router;
use bashu_bus::{Bus, ConsumerSpec, Retry};
use bashu_registry::{Counties, CountyTokens, RegistryStore, RegistryView, StaffTokens};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::{Config, Error, Target, observe::OperatorView};

/// What every service of the process shares: the configuration, the registry, the credentials
/// and the guard in front of staff methods.
pub(crate) struct Shared<'a> {
    pub(crate) config: &'a Config,
    pub(crate) counties: Arc<Counties>,
    pub(crate) store: RegistryStore,
    pub(crate) registry: RegistryView,
    pub(crate) tokens: CountyTokens,
    pub(crate) staff: StaffTokens,
    pub(crate) guard: bashu_admin::Guard,
    /// Stops what a service starts while it is built (the duty board's watches).
    pub(crate) shutdown: CancellationToken,
}

/// A service as the process runs it: what it serves, what it reads, and its work.
pub(crate) trait Service: Send {
    /// Its HTTP routes.
    fn routes(&self) -> Router {
        Router::new()
    }

    /// Adds its gRPC services (staff methods behind `guard`).
    fn grpc(&self, _guard: &bashu_admin::Guard, _grpc: &mut GrpcServices) {}

    /// The durable consumers it reads (named on `bus`): the process is ready once they exist.
    fn consumers(&self, _bus: &Bus) -> Vec<ConsumerSpec> {
        Vec::new()
    }

    /// What the operators' metrics read, if it keeps that.
    fn operator_view(&self) -> Option<OperatorView> {
        None
    }

    /// Its work until `shutdown`: consumers, timers, pollers.
    fn run(self: Box<Self>, shutdown: CancellationToken) -> BoxFuture<'static, Result<(), bashu_bus::Error>>;
}

/// The gRPC services of the process, with the names the health service reports SERVING.
#[derive(Default)]
pub(crate) struct GrpcServices {
    pub(crate) routes: tonic::service::Routes,
    pub(crate) serving: Vec<&'static str>,
}

impl GrpcServices {
    fn add<S>(&mut self, service: S)
    where
        S: tower::Service<axum::http::Request<tonic::body::Body>, Error = std::convert::Infallible>
            + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.serving.push(S::NAME);
        self.routes = std::mem::take(&mut self.routes).add_service(service);
    }
}

impl Target {
    /// Builds this service on `bus`, its own connection.
    pub(crate) async fn build(self, shared: &Shared<'_>, bus: Bus) -> Result<Box<dyn Service>, Error> {
        let config = shared.config;
        Ok(match self {
            Target::Ingest => Box::new(IngestService {
                ingest: bashu_ingest::Ingest::build(
                    config.ingest.clone(),
                    config.egress.clone(),
                    bus,
                    shared.counties.clone(),
                    shared.registry.clone(),
                    shared.tokens.clone(),
                )
                .await?,
                status_consumer: config.ingest.status_consumer.clone(),
            }),
            Target::Moderation => Box::new(bashu_moderation::Moderation::build(config.moderation.clone(), bus).await?),
            Target::Distribution => Box::new(
                bashu_distribution::Distribution::build(
                    config.distribution.clone(),
                    config.egress.clone(),
                    bus,
                    shared.counties.clone(),
                    shared.registry.clone(),
                    shared.tokens.clone(),
                )
                .await?,
            ),
            Target::Alerts => Box::new(AlertsService {
                alerts: bashu_alerts::Alerts::build(
                    config.alerts.clone(),
                    bus,
                    shared.counties.clone(),
                    shared.registry.clone(),
                )
                .await?,
                callers: bashu_alerts::Callers::new(shared.tokens.clone(), shared.staff.clone()),
            }),
            Target::Admin => Box::new(AdminService::build(shared, bus).await?),
            Target::Coverage => Box::new(
                bashu_coverage::Coverage::build(
                    config.coverage.clone(),
                    bus,
                    shared.counties.clone(),
                    shared.registry.clone(),
                    shared.tokens.clone(),
                    shared.staff.clone(),
                )
                .await?,
            ),
        })
    }
}

struct IngestService {
    ingest: bashu_ingest::Ingest,
    status_consumer: bashu_bus::RetryConfig,
}

impl Service for IngestService {
    fn routes(&self) -> Router {
        self.ingest.http_router()
    }

    fn grpc(&self, _guard: &bashu_admin::Guard, grpc: &mut GrpcServices) {
        grpc.add(self.ingest.grpc_service());
    }

    fn consumers(&self, bus: &Bus) -> Vec<ConsumerSpec> {
        vec![bus.stories().ingest_status_consumer(Retry::default())]
    }

    fn run(self: Box<Self>, shutdown: CancellationToken) -> BoxFuture<'static, Result<(), bashu_bus::Error>> {
        Box::pin(self.ingest.run(self.status_consumer, shutdown))
    }
}

impl Service for bashu_moderation::Moderation {
    fn grpc(&self, guard: &bashu_admin::Guard, grpc: &mut GrpcServices) {
        grpc.add(guard.wrap(self.review_desk().grpc_service()));
    }

    fn consumers(&self, bus: &Bus) -> Vec<ConsumerSpec> {
        vec![bus.stories().moderation_consumer(Retry::default())]
    }

    fn run(self: Box<Self>, shutdown: CancellationToken) -> BoxFuture<'static, Result<(), bashu_bus::Error>> {
        Box::pin((*self).run(shutdown))
    }
}

impl Service for bashu_distribution::Distribution {
    fn routes(&self) -> Router {
        self.http_router()
    }

    fn grpc(&self, _guard: &bashu_admin::Guard, grpc: &mut GrpcServices) {
        grpc.add(self.grpc_service());
    }

    fn consumers(&self, bus: &Bus) -> Vec<ConsumerSpec> {
        let stories = bus.stories();
        vec![
            stories.distribution_consumer(Retry::default()),
            stories.takedown_consumer(Retry::default()),
            stories.county_receipts_consumer(Retry::default()),
            stories.county_uses_consumer(Retry::default()),
        ]
    }

    fn run(self: Box<Self>, shutdown: CancellationToken) -> BoxFuture<'static, Result<(), bashu_bus::Error>> {
        Box::pin((*self).run(shutdown))
    }
}

impl Service for bashu_coverage::Coverage {
    fn routes(&self) -> Router {
        self.api().router()
    }

    fn grpc(&self, _guard: &bashu_admin::Guard, grpc: &mut GrpcServices) {
        grpc.add(self.api().grpc_service());
    }

    fn consumers(&self, _bus: &Bus) -> Vec<ConsumerSpec> {
        vec![self.consumer()]
    }

    fn run(self: Box<Self>, shutdown: CancellationToken) -> BoxFuture<'static, Result<(), bashu_bus::Error>> {
        Box::pin((*self).run(shutdown))
    }
}

struct AlertsService {
    alerts: bashu_alerts::Alerts,
    /// Who may call: county tokens for receipts, staff tokens for desks' duty officers.
    callers: bashu_alerts::Callers,
}

impl Service for AlertsService {
    fn routes(&self) -> Router {
        self.alerts.http_router(self.callers.clone())
    }

    fn grpc(&self, _guard: &bashu_admin::Guard, grpc: &mut GrpcServices) {
        grpc.add(self.alerts.grpc_service(self.callers.clone()));
    }

    fn consumers(&self, bus: &Bus) -> Vec<ConsumerSpec> {
        vec![bus.alerts().fanout_consumer(Retry::default()), bus.alerts().tracker_consumer(Retry::default())]
    }

    fn run(self: Box<Self>, shutdown: CancellationToken) -> BoxFuture<'static, Result<(), bashu_bus::Error>> {
        Box::pin(self.alerts.run(shutdown))
    }
}

/// The operators' API, and the duty board served beside it at `/board/`.
struct AdminService {
    admin: bashu_admin::Admin,
    duty_board: bashu_board::Board,
    operator_view: OperatorView,
}

impl AdminService {
    async fn build(shared: &Shared<'_>, bus: Bus) -> Result<Self, Error> {
        let board = bashu_alerts_core::AlertBoard::open(&bus).await.map_err(bashu_alerts::Error::from)?;
        let takedowns = bashu_stories_core::TakedownBoard::open(&bus).await?;
        let operator_view = OperatorView { bus: bus.clone(), board: board.clone() };
        let admin = bashu_admin::Admin::build(bashu_admin::Sources {
            bus: bus.clone(),
            store: shared.store.clone(),
            counties: shared.counties.clone(),
            registry: shared.registry.clone(),
            board,
            takedowns,
            tokens: shared.tokens.clone(),
            staff: shared.staff.clone(),
            nats_users: bashu_registry::NatsUsers::open(&bus, shared.counties.clone()).await?,
            egress: shared.config.egress.clone(),
        });
        let duty_board = bashu_board::Board::start(
            bus,
            &shared.counties,
            shared.staff.clone(),
            (shared.config.coverage.due_soon_warning_ms / 1000) as i64,
            shared.shutdown.clone(),
        )
        .await?;
        Ok(Self { admin, duty_board, operator_view })
    }
}

impl Service for AdminService {
    fn routes(&self) -> Router {
        self.duty_board.router()
    }

    fn grpc(&self, guard: &bashu_admin::Guard, grpc: &mut GrpcServices) {
        grpc.routes = self.admin.add_services(guard, std::mem::take(&mut grpc.routes));
        grpc.serving.extend(bashu_admin::Admin::SERVICE_NAMES);
    }

    fn operator_view(&self) -> Option<OperatorView> {
        Some(self.operator_view.clone())
    }

    fn run(self: Box<Self>, _shutdown: CancellationToken) -> BoxFuture<'static, Result<(), bashu_bus::Error>> {
        // Requests only: the board's watches were started with it and stop at shutdown.
        Box::pin(async { Ok(()) })
    }
}
