//! NATS identities of counties and desks (nkeys: the public key stored in the CREDENTIALS
//! bucket, the seed handed out once), and nats-server's authorization generated from them and
//! from the services' own keys, with each identity's permissions derived from the registry.

use std::sync::Arc;

use async_nats::jetstream::kv;
use bashu_bus::{Bus, Permissions, Subjects};
use bashu_proto::registry::v1::{NatsUser, NatsUserKind};
use prost::Message;

use crate::{Counties, Error, Result, credentials::store};

const KEY: &str = "nats-user.";

/// An identity as issued: the seed is shown this once and never stored.
#[derive(Clone)]
pub struct IssuedNatsUser {
    /// The identity's record.
    pub record: NatsUser,
    /// The nkey seed (`SU…`) to give to the county or desk.
    pub seed: String,
}

impl std::fmt::Debug for IssuedNatsUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedNatsUser").field("record", &self.record).field("seed", &"<redacted>").finish()
    }
}

/// The NATS identities in the CREDENTIALS bucket.
#[derive(Clone)]
pub struct NatsUsers {
    kv: kv::Store,
    counties: Arc<Counties>,
}

impl NatsUsers {
    /// Opens (creating if needed) the CREDENTIALS bucket.
    pub async fn open(bus: &Bus, counties: Arc<Counties>) -> Result<Self> {
        Ok(Self { kv: bus.registry().credentials_bucket().await?, counties })
    }

    /// The bucket, to watch for changes under [`NatsUsers::WATCH`].
    pub fn bucket(&self) -> &kv::Store {
        &self.kv
    }

    /// The keys of every identity, for a watch.
    pub const WATCH: &'static str = "nats-user.>";

    /// A new identity for a county (old codes resolved) or a desk (the caller checks the desk
    /// exists). Earlier identities stay valid until revoked, so a county can rotate without a gap.
    pub async fn issue(&self, kind: NatsUserKind, owner: &str, label: &str) -> Result<IssuedNatsUser> {
        let owner = match kind {
            NatsUserKind::County => self.counties.resolve(owner)?.county.code.clone(),
            NatsUserKind::Desk if !owner.is_empty() && owner.len() <= 64 => owner.to_owned(),
            _ => return Err(Error::Invalid { field: "owner".into(), reason: "a county code or a desk id".into() }),
        };
        // The owner becomes a subject token in the identity's permissions: it must be one.
        Subjects::default().alert_submit(&owner).map_err(|_| Error::Invalid {
            field: "owner".into(),
            reason: "letters, digits, '-' and '_' only".into(),
        })?;
        let pair = nkeys::KeyPair::new_user();
        let seed = pair.seed().map_err(|e| Error::Invalid { field: "seed".into(), reason: e.to_string() })?;
        let record = NatsUser {
            public_key: pair.public_key(),
            kind: kind as i32,
            owner,
            label: label.to_owned(),
            issued_at: Some(bashu_proto::time::now()),
        };
        self.kv
            .put(format!("{KEY}{}", record.public_key), record.encode_to_vec().into())
            .await
            .map_err(store("put NATS identity"))?;
        Ok(IssuedNatsUser { record, seed })
    }

    /// Every identity, oldest first.
    pub async fn list(&self) -> Result<Vec<NatsUser>> {
        use futures::TryStreamExt;
        let keys: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(store("list NATS identities"))?
            .try_collect()
            .await
            .map_err(store("list NATS identities"))?;
        let mut users = Vec::new();
        for key in keys.into_iter().filter(|k| k.starts_with(KEY)) {
            if let Some(bytes) = self.kv.get(&key).await.map_err(store("read NATS identity"))? {
                users.push(NatsUser::decode(bytes).map_err(|source| Error::Corrupt { key: key.clone(), source })?);
            }
        }
        users.sort_by_key(|u| (u.issued_at.map(|t| (t.seconds, t.nanos)), u.public_key.clone()));
        Ok(users)
    }

    /// Revokes one identity; its record as it was, or none if there was no such identity.
    pub async fn revoke(&self, public_key: &str) -> Result<Option<NatsUser>> {
        let key = format!("{KEY}{public_key}");
        let Some(bytes) = self.kv.get(&key).await.map_err(store("read NATS identity"))? else { return Ok(None) };
        let record = NatsUser::decode(bytes).map_err(|source| Error::Corrupt { key: key.clone(), source })?;
        self.kv.purge(&key).await.map_err(store("revoke NATS identity"))?;
        Ok(Some(record))
    }
}

/// A service's identity in the generated authorization: its name and nkey public key.
#[derive(Clone, Debug)]
pub struct ServiceKey {
    /// One of [`bashu_bus::SERVICES`].
    pub service: String,
    /// The public key, `U…`.
    pub public_key: String,
}

/// nats-server's `authorization` block for these services, counties and desks (NATS
/// configuration syntax, with JSON values), for a server configuration to `include`.
pub fn authorization(subjects: &Subjects, services: &[ServiceKey], users: &[NatsUser]) -> Result<String> {
    let mut entries = Vec::new();
    let entry = |public_key: &str, permissions: Permissions| {
        let mut rules = serde_json::json!({
            "publish": { "allow": permissions.publish },
            "subscribe": { "allow": permissions.subscribe },
        });
        if permissions.allow_responses {
            rules["allow_responses"] = serde_json::json!(true);
        }
        serde_json::json!({ "nkey": public_key, "permissions": rules })
    };
    for service in services {
        let permissions = Permissions::service(subjects, &service.service).ok_or_else(|| Error::Invalid {
            field: "service".into(),
            reason: format!("{} is not one of {:?}", service.service, bashu_bus::SERVICES),
        })?;
        entries.push(entry(&service.public_key, permissions));
    }
    for user in users {
        let permissions = match user.kind() {
            NatsUserKind::County => Permissions::county(subjects, &user.owner)?,
            NatsUserKind::Desk => Permissions::desk(subjects, &user.owner)?,
            NatsUserKind::Unspecified => continue,
        };
        entries.push(entry(&user.public_key, permissions));
    }
    let block = serde_json::to_string_pretty(&serde_json::json!({ "users": entries })).expect("JSON values");
    Ok(format!(
        "# Generated by `bashu nats-auth` from Bashu's registry: do not edit (docs/security.md).\nauthorization: {block}\n"
    ))
}
