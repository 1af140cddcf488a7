//! Where bashuctl connects and as whom (flags, then environment, then the config file), the
//! authenticated channel, and how a failure becomes a message and an exit code.

use std::{collections::BTreeMap, path::PathBuf, process::ExitCode};

use figment::{
    Figment,
    providers::{Format, Toml},
};
use tonic::{
    Code, Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig},
};

/// The default admin endpoint: `make run`'s gRPC listener.
pub(crate) const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:50051";

/// The services some commands talk to directly (their `bashu --target` names), when each runs in
/// its own pods: `review` → moderation, `alert issue|validate|ack` → alerts, `story` → ingest,
/// `coverage` → coverage. Everything else is the admin API.
pub(crate) const OWN_ENDPOINT_SERVICES: [&str; 4] = ["moderation", "alerts", "ingest", "coverage"];

/// What the config file may say (`~/.config/bashuctl/config.toml` or `--config`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FileSettings {
    /// The admin gRPC endpoint.
    pub(crate) endpoint: Option<String>,
    /// A staff token.
    pub(crate) token: Option<String>,
    /// A file holding the staff token (safer than the token in the config file).
    pub(crate) token_file: Option<PathBuf>,
    /// The CA certificate (PEM) that signed an `https://` endpoint's certificate, when it is not
    /// one the system trusts.
    pub(crate) ca_file: Option<PathBuf>,
    /// Endpoints of services reached apart from the admin API, by service (`coverage = "…"`).
    pub(crate) endpoints: BTreeMap<String, String>,
}

/// The endpoint and token in force.
#[derive(Clone)]
pub(crate) struct Settings {
    /// The admin gRPC endpoint.
    pub(crate) endpoint: String,
    /// Where the services of [`OWN_ENDPOINT_SERVICES`] are, when not at `endpoint`.
    endpoints: BTreeMap<String, String>,
    token: Option<String>,
    ca_file: Option<PathBuf>,
}

/// A failure: what to print, and the documented exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The message for stderr.
    pub(crate) message: String,
    /// The exit code (see `bashuctl --help`).
    pub(crate) code: u8,
}

/// Exit codes, as documented in `bashuctl --help` and docs/operations.md.
pub(crate) mod exit {
    /// Something else went wrong.
    pub(crate) const OTHER: u8 = 1;
    /// The command line was wrong (clap's own code).
    pub(crate) const USAGE: u8 = 2;
    /// The thing named does not exist.
    pub(crate) const NOT_FOUND: u8 = 3;
    /// The input was refused (invalid, conflicting, or not possible now).
    pub(crate) const REFUSED: u8 = 4;
    /// No token, or an unknown or revoked one.
    pub(crate) const UNAUTHENTICATED: u8 = 5;
    /// The token's role may not do this.
    pub(crate) const PERMISSION_DENIED: u8 = 6;
    /// Bashu (or its bus) could not be reached.
    pub(crate) const UNAVAILABLE: u8 = 7;
}

impl Failure {
    /// A failure with a message and code.
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        Self { message: message.into(), code }
    }

    /// The command line or a local file was wrong.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(exit::USAGE, message)
    }

    /// The exit code for the shell.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        let code = match status.code() {
            Code::NotFound => exit::NOT_FOUND,
            Code::InvalidArgument | Code::FailedPrecondition | Code::AlreadyExists | Code::OutOfRange => exit::REFUSED,
            Code::Unauthenticated => exit::UNAUTHENTICATED,
            Code::PermissionDenied => exit::PERMISSION_DENIED,
            Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => exit::UNAVAILABLE,
            _ => exit::OTHER,
        };
        let hint = match code {
            exit::UNAUTHENTICATED => " (give a staff token: --token, BASHUCTL_TOKEN or the config file)",
            exit::UNAVAILABLE => " (is Bashu running at the endpoint?)",
            _ => "",
        };
        Failure::new(code, format!("{:?}: {}{hint}", status.code(), status.message()))
    }
}

impl Settings {
    /// Flags and environment (already merged by clap, the most explicit token chosen) first,
    /// then the config file.
    pub(crate) fn resolve(
        endpoint: Option<String>,
        endpoint_for: Vec<String>,
        token: Option<String>,
        token_file: Option<PathBuf>,
        config: Option<PathBuf>,
        ca_file: Option<PathBuf>,
    ) -> Result<Self, Failure> {
        let explicit = config.is_some();
        let path = config
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config/bashuctl/config.toml")));
        let file: FileSettings = match path {
            Some(path) if path.exists() => Figment::from(Toml::file(&path))
                .extract()
                .map_err(|e| Failure::usage(format!("config file {}: {e}", path.display())))?,
            Some(path) if explicit => {
                return Err(Failure::usage(format!("config file {} does not exist", path.display())));
            }
            _ => FileSettings::default(),
        };
        let read_token = |path: PathBuf| {
            std::fs::read_to_string(&path)
                .map(|t| t.trim().to_owned())
                .map_err(|e| Failure::usage(format!("token file {}: {e}", path.display())))
        };
        let token = match (token, token_file) {
            (Some(token), _) => Some(token),
            (None, Some(path)) => Some(read_token(path)?),
            (None, None) => match (file.token, file.token_file) {
                (Some(token), _) => Some(token),
                (None, Some(path)) => Some(read_token(path)?),
                (None, None) => None,
            },
        };
        let endpoint = endpoint.or(file.endpoint).unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let mut endpoints = file.endpoints;
        for given in endpoint_for {
            let (service, url) = given.split_once('=').ok_or_else(|| {
                Failure::usage(format!("--endpoint-for {given}: SERVICE=URL, e.g. coverage=https://…"))
            })?;
            endpoints.insert(service.trim().to_owned(), url.trim().to_owned());
        }
        if let Some(service) = endpoints.keys().find(|s| !OWN_ENDPOINT_SERVICES.contains(&s.as_str())) {
            return Err(Failure::usage(format!(
                "endpoint for {service:?}: bashuctl reaches only {} apart from the admin API",
                OWN_ENDPOINT_SERVICES.join(", ")
            )));
        }
        Ok(Self { endpoint, endpoints, token, ca_file: ca_file.or(file.ca_file) })
    }

    /// The settings for a command that talks to `service` directly: its own endpoint if one is
    /// given, else the admin endpoint (every service in one process, as `make run` has it).
    pub(crate) fn for_service(&self, service: &str) -> Self {
        let endpoint = self.endpoints.get(service).cloned().unwrap_or_else(|| self.endpoint.clone());
        Self { endpoint, ..self.clone() }
    }

    /// A channel to the endpoint: TLS for `https://` (the system's roots, or `ca_file`).
    pub(crate) async fn channel(&self) -> Result<Channel, Failure> {
        let mut endpoint = Channel::from_shared(self.endpoint.clone())
            .map_err(|e| Failure::usage(format!("endpoint {}: {e}", self.endpoint)))?;
        if self.endpoint.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(path) = &self.ca_file {
                let pem =
                    std::fs::read(path).map_err(|e| Failure::usage(format!("CA file {}: {e}", path.display())))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint.tls_config(tls).map_err(|e| Failure::usage(format!("TLS: {e}")))?;
        }
        endpoint
            .connect()
            .await
            .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("cannot reach {}: {e}", self.endpoint)))
    }

    /// A channel whose every call carries the staff token.
    pub(crate) async fn connect(&self) -> Result<StaffChannel, Failure> {
        let channel = self.channel().await?;
        let bearer = match &self.token {
            Some(token) => Some(
                format!("Bearer {token}")
                    .parse()
                    .map_err(|_| Failure::usage("the token has characters a header cannot hold"))?,
            ),
            None => None,
        };
        Ok(InterceptedService::new(channel, Bearer(bearer)))
    }
}

/// Adds the staff token to every call.
#[derive(Clone)]
pub(crate) struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The channel every client uses.
pub(crate) type StaffChannel = InterceptedService<Channel, Bearer>;
