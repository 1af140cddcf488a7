//! Each service as the process runs it: built on its own bus connection from what every service
//! shares, it adds its routes, gRPC services and the consumers the process waits for to the
//! [`Wiring`], and its work to the process's tasks. [`System::start`](crate::System::start) is a
//! loop over the targets that calls [`Target::start`].

use std::sync::Arc;

use axum::Router;
use bashu_bus::{Bus, ConsumerSpec, Retry};
use bashu_registry::{Counties, CountyTokens, RegistryStore, RegistryView, StaffTokens};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::error;

use crate::{Config, Error, Target, observe::OperatorView};

/// What every service of the process shares: the configuration, the registry, the credentials
/// and the guard in front of staff methods.
pub(crate) struct Shared<'a> {
    pub(crate) config: &'a Config,
    /// The process's own connection: provisioning, readiness, consumer specs.
    pub(crate) control: &'a Bus,
    pub(crate) counties: Arc<Counties>,
    pub(crate) store: RegistryStore,
    pub(crate) registry: RegistryView,
    pub(crate) tokens: CountyTokens,
    pub(crate) staff: StaffTokens,
    pub(crate) guard: bashu_admin::Guard,
    pub(crate) tracker: &'a TaskTracker,
    pub(crate) shutdown: CancellationToken,
}

/// What the process serves and watches, filled in by each service it runs.
#[derive(Default)]
pub(crate) struct Wiring {
    pub(crate) http: Router,
    pub(crate) grpc: tonic::service::Routes,
    /// gRPC services reported SERVING by the health service.
    pub(crate) serving: Vec<&'static str>,
    /// The consumers the process reads: it is ready once they exist.
    pub(crate) consumers: Vec<ConsumerSpec>,
    /// What the operators' metrics read (with admin).
    pub(crate) operator_view: Option<OperatorView>,
}

impl Wiring {
    fn add_grpc<S>(&mut self, service: S)
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
        self.grpc = std::mem::take(&mut self.grpc).add_service(service);
    }
}

/// Runs a service's work until it ends, logging an error it ends with.
fn spawn<F>(shared: &Shared<'_>, name: &'static str, work: F)
where
    F: Future<Output = Result<(), bashu_bus::Error>> + Send + 'static,
{
    shared.tracker.spawn(async move {
        if let Err(error) = work.await {
            error!(service = name, error = %error, "service stopped with an error");
        }
    });
}

impl Target {
    /// Builds this service on `bus` and wires it into the process.
    pub(crate) async fn start(self, shared: &Shared<'_>, bus: Bus, wiring: &mut Wiring) -> Result<(), Error> {
        match self {
            Target::Ingest => ingest(shared, bus, wiring).await,
            Target::Moderation => moderation(shared, bus, wiring).await,
            Target::Distribution => distribution(shared, bus, wiring).await,
            Target::Alerts => alerts(shared, bus, wiring).await,
            Target::Admin => admin(shared, bus, wiring).await,
        }
    }
}

async fn ingest(shared: &Shared<'_>, bus: Bus, wiring: &mut Wiring) -> Result<(), Error> {
    let config = shared.config;
    let ingest = bashu_ingest::Ingest::build(
        config.ingest.clone(),
        config.egress.clone(),
        bus,
        shared.counties.clone(),
        shared.registry.clone(),
        shared.tokens.clone(),
    )
    .await?;
    wiring.http = std::mem::take(&mut wiring.http).merge(ingest.http_router());
    wiring.add_grpc(ingest.grpc_service());
    wiring.consumers.push(shared.control.stories().ingest_status_consumer(Retry::default()));
    spawn(shared, "ingest", ingest.run(config.ingest.status_consumer.clone(), shared.shutdown.clone()));
    Ok(())
}

async fn moderation(shared: &Shared<'_>, bus: Bus, wiring: &mut Wiring) -> Result<(), Error> {
    let moderation = bashu_moderation::Moderation::build(shared.config.moderation.clone(), bus).await?;
    wiring.add_grpc(shared.guard.wrap(moderation.review_desk().grpc_service()));
    wiring.consumers.push(shared.control.stories().moderation_consumer(Retry::default()));
    spawn(shared, "moderation", moderation.run(shared.shutdown.clone()));
    Ok(())
}

async fn distribution(shared: &Shared<'_>, bus: Bus, wiring: &mut Wiring) -> Result<(), Error> {
    let config = shared.config;
    let distribution = bashu_distribution::Distribution::build(
        config.distribution.clone(),
        config.egress.clone(),
        bus,
        shared.counties.clone(),
        shared.registry.clone(),
    )
    .await?;
    let control = shared.control;
    wiring.consumers.extend([
        control.stories().distribution_consumer(Retry::default()),
        control.stories().takedown_consumer(Retry::default()),
        control.stories().county_receipts_consumer(Retry::default()),
        control.stories().county_uses_consumer(Retry::default()),
    ]);
    spawn(shared, "distribution", distribution.run(shared.shutdown.clone()));
    Ok(())
}

async fn alerts(shared: &Shared<'_>, bus: Bus, wiring: &mut Wiring) -> Result<(), Error> {
    let alerts = bashu_alerts::Alerts::build(
        shared.config.alerts.clone(),
        bus,
        shared.counties.clone(),
        shared.registry.clone(),
    )
    .await?;
    let callers = bashu_alerts::Callers::new(shared.tokens.clone(), shared.staff.clone());
    wiring.http = std::mem::take(&mut wiring.http).merge(alerts.http_router(callers.clone()));
    wiring.add_grpc(alerts.grpc_service(callers));
    let control = shared.control;
    wiring.consumers.extend([
        control.alerts().fanout_consumer(Retry::default()),
        control.alerts().tracker_consumer(Retry::default()),
    ]);
    spawn(shared, "alerts", alerts.run(shared.shutdown.clone()));
    Ok(())
}

/// The operators' API, and the duty board served beside it at `/board/`.
async fn admin(shared: &Shared<'_>, bus: Bus, wiring: &mut Wiring) -> Result<(), Error> {
    let board = bashu_alerts_core::AlertBoard::open(&bus).await.map_err(bashu_alerts::Error::from)?;
    let takedowns = bashu_stories_core::TakedownBoard::open(&bus).await?;
    wiring.operator_view = Some(OperatorView { bus: bus.clone(), board: board.clone() });
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
    wiring.grpc = admin.add_services(&shared.guard, std::mem::take(&mut wiring.grpc));
    wiring.serving.extend(bashu_admin::Admin::SERVICE_NAMES);
    let duty_board =
        bashu_board::Board::start(bus, &shared.counties, shared.staff.clone(), shared.shutdown.clone()).await?;
    wiring.http = std::mem::take(&mut wiring.http).merge(duty_board.router());
    Ok(())
}
