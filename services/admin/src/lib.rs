//! Bashu admin: the operators' gRPC API (registry, credentials, alert board, takedowns,
//! moderation rules, bus health, dead letters, replay, the collaboration report, the audit log)
//! and the guard that checks every call's staff token against one table of roles.

mod audit;
mod boards;
mod credentials;
mod error;
mod guard;
mod operations;
mod pool;
mod registry;
mod replay;
mod report;

use std::sync::Arc;

use bashu_alerts_core::AlertBoard;
use bashu_proto::{
    admin::v1::{
        alert_board_service_server::AlertBoardServiceServer, audit_service_server::AuditServiceServer,
        bus_health_service_server::BusHealthServiceServer, credential_service_server::CredentialServiceServer,
        dead_letter_service_server::DeadLetterServiceServer,
        moderation_rules_service_server::ModerationRulesServiceServer,
        pool_index_service_server::PoolIndexServiceServer, registry_service_server::RegistryServiceServer,
        replay_service_server::ReplayServiceServer, report_service_server::ReportServiceServer,
        takedown_service_server::TakedownServiceServer,
    },
    registry::v1::StaffRole,
};
use bashu_registry::{Caller, Counties, CountyTokens, RegistryStore, RegistryView, StaffTokens, StaticStaff};
use bashu_stories_core::TakedownBoard;
use tonic::server::NamedService;

pub use error::Error;
pub use guard::{Called, Guard, Guarded, METHOD_ROLES, Need, need_of};

/// A secret that never shows in logs or `Debug`.
#[derive(Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Secret(String);

/// Written as nothing at all: the configuration reference shows defaults, never a secret.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_none()
    }
}

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "<unset>" } else { "<redacted>" })
    }
}

/// Admin's settings.
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The bootstrap operator's bearer token (`authorization: Bearer <token>`): the operator
    /// who issues everyone else's staff tokens, at least 16 characters (`make run`:
    /// `dev-operator-token`). Unset: only issued staff tokens are accepted.
    pub operator_token: Secret,
}

impl Config {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if !self.operator_token.0.is_empty() && self.operator_token.0.len() < 16 {
            return Err("admin.operator_token: at least 16 characters".into());
        }
        Ok(())
    }

    /// The bootstrap operator as a configured staff member, when a token is set.
    pub fn bootstrap_operator(&self) -> Option<StaticStaff> {
        (!self.operator_token.0.is_empty()).then(|| StaticStaff {
            caller: Caller {
                name: "bootstrap-operator".into(),
                role: StaffRole::Operator,
                review_levels: Vec::new(),
                desk_id: String::new(),
            },
            digest: bashu_registry::token_digest(&self.operator_token.0),
        })
    }
}

/// What the admin API serves: handles on the registry, the credentials and the other
/// services' boards.
#[derive(Clone)]
pub struct Sources {
    /// The bus (the ledgers, dead letters, consumers).
    pub bus: bashu_bus::Bus,
    /// Registry writes.
    pub store: RegistryStore,
    /// The built-in counties.
    pub counties: Arc<Counties>,
    /// The live registry.
    pub registry: RegistryView,
    /// The alert status board.
    pub board: AlertBoard,
    /// Takedowns of withdrawn stories.
    pub takedowns: TakedownBoard,
    /// County tokens.
    pub tokens: CountyTokens,
    /// Staff tokens.
    pub staff: StaffTokens,
    /// NATS identities of counties and desks.
    pub nats_users: bashu_registry::NatsUsers,
    /// Where a webhook may point.
    pub egress: bashu_egress::Config,
}

/// The admin service.
#[derive(Clone)]
pub struct Admin {
    bus: bashu_bus::Bus,
    store: RegistryStore,
    counties: Arc<Counties>,
    registry: RegistryView,
    board: AlertBoard,
    takedowns: TakedownBoard,
    tokens: CountyTokens,
    staff: StaffTokens,
    nats_users: bashu_registry::NatsUsers,
    egress: bashu_egress::Config,
}

/// One of the admin gRPC services behind the guard.
pub type Service<S> = Guarded<S>;

impl Admin {
    /// Builds the service over its sources.
    pub fn build(sources: Sources) -> Self {
        let Sources { bus, store, counties, registry, board, takedowns, tokens, staff, nats_users, egress } = sources;
        Self { bus, store, counties, registry, board, takedowns, tokens, staff, nats_users, egress }
    }

    /// Every admin gRPC service behind `guard`, for a tonic router.
    pub fn add_services(&self, guard: &Guard, routes: tonic::service::Routes) -> tonic::service::Routes {
        routes
            .add_service(guard.wrap(RegistryServiceServer::new(self.clone())))
            .add_service(guard.wrap(CredentialServiceServer::new(self.clone())))
            .add_service(guard.wrap(AlertBoardServiceServer::new(self.clone())))
            .add_service(guard.wrap(TakedownServiceServer::new(self.clone())))
            .add_service(guard.wrap(ModerationRulesServiceServer::new(self.clone())))
            .add_service(guard.wrap(BusHealthServiceServer::new(self.clone())))
            .add_service(guard.wrap(DeadLetterServiceServer::new(self.clone())))
            .add_service(guard.wrap(ReplayServiceServer::new(self.clone())))
            .add_service(guard.wrap(ReportServiceServer::new(self.clone())))
            .add_service(guard.wrap(AuditServiceServer::new(self.clone())))
            .add_service(guard.wrap(PoolIndexServiceServer::new(self.clone())))
    }

    /// The names of the services [`Admin::add_services`] adds, for the gRPC health service
    /// (taken from the generated servers, so they cannot drift from the routes).
    pub const SERVICE_NAMES: [&'static str; 11] = [
        <RegistryServiceServer<Admin> as NamedService>::NAME,
        <CredentialServiceServer<Admin> as NamedService>::NAME,
        <AlertBoardServiceServer<Admin> as NamedService>::NAME,
        <TakedownServiceServer<Admin> as NamedService>::NAME,
        <ModerationRulesServiceServer<Admin> as NamedService>::NAME,
        <BusHealthServiceServer<Admin> as NamedService>::NAME,
        <DeadLetterServiceServer<Admin> as NamedService>::NAME,
        <ReplayServiceServer<Admin> as NamedService>::NAME,
        <ReportServiceServer<Admin> as NamedService>::NAME,
        <AuditServiceServer<Admin> as NamedService>::NAME,
        <PoolIndexServiceServer<Admin> as NamedService>::NAME,
    ];
}
