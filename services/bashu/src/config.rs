//! The binary's configuration: defaults, then a TOML file, then `BASHU_` environment variables
//! (`__` for nesting, e.g. `BASHU_HTTP__LISTEN=0.0.0.0:8080`), then validation.

use std::{net::SocketAddr, path::Path};

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use serde::Deserialize;

/// Everything the binary can be told.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The NATS connection.
    pub nats: NatsConfig,
    /// The HTTP listener (ingest's HTTP API, health).
    pub http: ListenConfig,
    /// The gRPC listener (ingest, admin).
    pub grpc: GrpcConfig,
    /// The registry.
    pub registry: RegistryConfig,
    /// Logging.
    pub log: LogConfig,
    /// Trace export.
    pub tracing: TracingConfig,
    /// Ingest's settings.
    pub ingest: bashu_ingest::Config,
    /// Moderation's settings.
    pub moderation: bashu_moderation::Config,
    /// Distribution's settings.
    pub distribution: bashu_distribution::Config,
    /// The alert service's settings.
    pub alerts: bashu_alerts::Config,
    /// Joint coverage's settings.
    pub coverage: bashu_coverage::Config,
    /// Admin's settings.
    pub admin: bashu_admin::Config,
    /// Which addresses feeds and webhooks that counties register may reach (all three of
    /// ingest, distribution and admin apply it).
    pub egress: bashu_egress::Config,
}

/// How to reach NATS.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// One or several comma-separated server URLs.
    pub url: String,
    /// A prefix for every subject and stream name (empty in production; used to isolate tests).
    pub prefix: String,
    /// Stream replicas: 1 for a single server, 3 for a production cluster.
    pub replicas: usize,
    /// A folder with the services' nkey seeds, `<service>.nk` (`bashu nats-auth init`); each
    /// service connects as itself. Unset: connect without an identity (a server without
    /// authorization, as in tests and the plain `make run`).
    pub nkey_dir: Option<std::path::PathBuf>,
    /// A CA certificate (PEM) for the server's TLS certificate; set: TLS required.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            prefix: String::new(),
            replicas: 1,
            nkey_dir: None,
            tls_ca_file: None,
        }
    }
}

impl NatsConfig {
    /// How `service` (one of [`bashu_bus::SERVICES`]) connects: its seed from `nkey_dir`.
    pub fn credentials(&self, service: &str) -> std::io::Result<bashu_bus::Credentials> {
        let nkey_seed = match &self.nkey_dir {
            None => None,
            Some(dir) => {
                let path = dir.join(format!("{service}.nk"));
                let seed = std::fs::read_to_string(&path)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                Some(seed.trim().to_owned())
            }
        };
        Ok(bashu_bus::Credentials { nkey_seed, tls_ca_file: self.tls_ca_file.clone(), inbox_prefix: None })
    }
}

/// An HTTP listen address.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ListenConfig {
    /// Address and port; port 0 picks a free one.
    pub listen: SocketAddr,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 8080)) }
    }
}

/// The gRPC listener.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Address and port; port 0 picks a free one.
    pub listen: SocketAddr,
    /// TLS: when set, the gRPC listener (ingest, alerts, admin) speaks only TLS.
    pub tls: Option<TlsConfig>,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 50051)), tls: None }
    }
}

/// A certificate chain and its private key, PEM files.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM).
    pub cert_file: std::path::PathBuf,
    /// Its private key (PEM). Read once at start-up, never logged.
    pub key_file: std::path::PathBuf,
}

/// Registry settings.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Writes the demo partnerships, the example Fujiang alliance and demo emergency desks with
    /// fresh keys at start-up (dev only).
    pub seed_demo: bool,
    /// Where `bashu` writes the demo desks' secret keys when it seeds them (dev only).
    pub demo_credentials_file: Option<std::path::PathBuf>,
}

/// Logging settings.
#[derive(Clone, Debug, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `RUST_LOG`-style filter.
    pub filter: String,
    /// `text` or `json`.
    pub format: String,
}

/// Where traces go.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// An OTLP/HTTP traces endpoint, e.g. `http://otel-collector:4318/v1/traces`. Unset: spans
    /// stay in the process (trace ids still flow through NATS headers and log lines).
    pub otlp_endpoint: Option<String>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { filter: "info".into(), format: "text".into() }
    }
}

impl Config {
    /// Loads the layers; `file` is optional.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.exists() {
                return Err(format!("configuration file {} does not exist", file.display()));
            }
            figment = figment.merge(Toml::file(file));
        }
        let config: Config = figment.merge(Env::prefixed("BASHU_").split("__")).extract().map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.nats.url.trim().is_empty() {
            return Err("nats.url is empty".into());
        }
        if !(1..=5).contains(&self.nats.replicas) {
            return Err("nats.replicas must be between 1 and 5".into());
        }
        bashu_bus::Subjects::new(&self.nats.prefix).map_err(|e| format!("nats.prefix: {e}"))?;
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err("log.format must be text or json".into());
        }
        self.ingest.validate()?;
        self.moderation.validate()?;
        self.distribution.validate()?;
        self.alerts.validate()?;
        self.coverage.validate()?;
        self.admin.validate()?;
        Ok(())
    }
}

/// The configuration reference: every key with its environment variable, what it is for (the
/// doc comment of its field) and its default, generated from [`Config`] itself. The README's
/// table is this text; a test keeps the two the same.
pub fn reference() -> String {
    let schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default();
    let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
    let mut rows = Vec::new();
    reference_rows(&schema, &schema, "", &defaults, &mut rows);
    let mut table = String::from("| key | env | what | default |\n|---|---|---|---|\n");
    for (key, description, default) in rows {
        let env = format!("BASHU_{}", key.replace('.', "__").to_uppercase());
        table.push_str(&format!("| `{key}` | `{env}` | {description} | {default} |\n"));
    }
    table
}

/// The schema `node` stands for: a `$ref` followed, an optional struct (`anyOf` with null)
/// taken as the struct.
fn resolved<'a>(root: &'a serde_json::Value, node: &'a serde_json::Value) -> &'a serde_json::Value {
    if let Some(reference) = node.get("$ref").and_then(|r| r.as_str()) {
        let name = reference.rsplit('/').next().unwrap_or("");
        return resolved(root, &root["$defs"][name]);
    }
    if let Some(variants) = node.get("anyOf").and_then(|v| v.as_array())
        && let Some(object) = variants.iter().map(|v| resolved(root, v)).find(|v| v.get("properties").is_some())
    {
        return object;
    }
    node
}

fn reference_rows(
    root: &serde_json::Value,
    node: &serde_json::Value,
    path: &str,
    defaults: &serde_json::Value,
    rows: &mut Vec<(String, String, String)>,
) {
    let Some(properties) = resolved(root, node).get("properties").and_then(|p| p.as_object()) else { return };
    for (name, property) in properties {
        let key = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
        let default = &defaults[name];
        if resolved(root, property).get("properties").is_some() {
            reference_rows(root, property, &key, default, rows);
            continue;
        }
        let description = property
            .get("description")
            .or_else(|| resolved(root, property).get("description"))
            .and_then(|d| d.as_str())
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace('|', "\\|");
        let default = match default {
            serde_json::Value::Null => "unset".to_owned(),
            serde_json::Value::String(text) if text.is_empty() => "empty".to_owned(),
            serde_json::Value::String(text) => format!("`{text}`"),
            serde_json::Value::Array(items) if items.is_empty() => "none".to_owned(),
            other => format!("`{other}`"),
        };
        rows.push((key, description, default));
    }
}

#[cfg(test)]
mod reference_tests {
    /// The README's configuration table is the one the configuration itself describes.
    #[test]
    fn the_readme_table_is_generated_from_the_configuration() {
        let readme = include_str!("../../../README.md");
        let (begin, end) = ("<!-- configuration:begin -->\n", "<!-- configuration:end -->");
        let start = readme.find(begin).expect("the README marks its configuration table") + begin.len();
        let documented = &readme[start..readme[start..].find(end).expect("the table's end") + start];
        let generated = super::reference();
        assert!(
            documented == generated,
            "README.md's configuration table differs from the configuration's own doc comments and defaults; \
             put this between the markers:\n{generated}"
        );
    }
}
