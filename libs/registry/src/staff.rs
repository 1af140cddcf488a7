//! Staff tokens for the admin API: a name, one role (viewer, desk officer, reviewer with levels,
//! operator), and the sha256 of a bearer token `bashu_staff_<id>_<secret>` in the CREDENTIALS
//! bucket. Static entries from configuration (the bootstrap operator, configured reviewers) are
//! checked the same way, so every caller of the admin API becomes one [`Caller`].

use async_nats::jetstream::kv;
use bashu_bus::Bus;
use bashu_proto::registry::v1::{StaffRole, StaffToken};
use futures::TryStreamExt;
use prost::Message;

use crate::{
    Error, Result,
    credentials::{Refusal, digests_equal, random_hex, store, token_digest},
};

const STAFF_KEY: &str = "staff-token.";
const STAFF_PREFIX: &str = "bashu_staff_";

/// Who is calling, once their token was checked. Handlers find it in the request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Their name, as the audit log records it.
    pub name: String,
    /// What they may do.
    pub role: StaffRole,
    /// A reviewer's levels.
    pub review_levels: Vec<u32>,
    /// A desk officer's desk.
    pub desk_id: String,
}

/// A staff member configured rather than issued (their token is in the configuration).
#[derive(Clone)]
pub struct StaticStaff {
    /// Who they are, with their role.
    pub caller: Caller,
    /// The sha256 of their token.
    pub digest: [u8; 32],
}

impl std::fmt::Debug for StaticStaff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticStaff").field("caller", &self.caller).finish_non_exhaustive()
    }
}

/// A staff token as issued: the secret is shown this once.
#[derive(Clone)]
pub struct IssuedStaffToken {
    /// The record (no digest).
    pub record: StaffToken,
    /// The bearer token.
    pub token: String,
}

impl std::fmt::Debug for IssuedStaffToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedStaffToken").field("record", &self.record).field("token", &"<redacted>").finish()
    }
}

/// Issued staff tokens (in CREDENTIALS) and the configured ones.
#[derive(Clone)]
pub struct StaffTokens {
    kv: kv::Store,
    statics: std::sync::Arc<Vec<StaticStaff>>,
    cache: crate::CredentialCache,
}

impl StaffTokens {
    /// Opens the CREDENTIALS bucket; `statics` are checked before it.
    pub async fn open(bus: &Bus, statics: Vec<StaticStaff>) -> Result<Self> {
        let kv = bus.registry().credentials_bucket().await?;
        Ok(Self { cache: crate::CredentialCache::new(kv.clone()), kv, statics: std::sync::Arc::new(statics) })
    }

    /// Checks tokens against `cache` (followed by the process) instead of reading the bucket.
    pub fn with_cache(self, cache: crate::CredentialCache) -> Self {
        Self { cache, ..self }
    }

    /// Issues a token. A reviewer needs levels (1-3), a desk officer a desk id; other roles
    /// take neither.
    pub async fn issue(&self, name: &str, role: StaffRole, levels: &[u32], desk_id: &str) -> Result<IssuedStaffToken> {
        let invalid = |field: &str, reason: &str| Error::Invalid { field: field.into(), reason: reason.into() };
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(invalid("name", "1-100 characters, no control characters"));
        }
        let mut review_levels = levels.to_vec();
        review_levels.sort_unstable();
        review_levels.dedup();
        match role {
            StaffRole::Unspecified => return Err(invalid("role", "viewer, desk, reviewer or operator")),
            StaffRole::Reviewer if review_levels.is_empty() || review_levels.iter().any(|l| !(1..=3).contains(l)) => {
                return Err(invalid("review_levels", "a reviewer needs one or more of the levels 1, 2, 3"));
            }
            StaffRole::Desk if desk_id.is_empty() => return Err(invalid("desk_id", "a desk officer needs a desk")),
            StaffRole::Reviewer | StaffRole::Desk => {}
            StaffRole::Viewer | StaffRole::Operator if !review_levels.is_empty() || !desk_id.is_empty() => {
                return Err(invalid("role", "only a reviewer has levels and only a desk officer has a desk"));
            }
            StaffRole::Viewer | StaffRole::Operator => {}
        }
        let id = random_hex(4);
        let token = format!("{STAFF_PREFIX}{id}_{}", random_hex(24));
        let record = StaffToken {
            id: id.clone(),
            name: name.to_owned(),
            role: role as i32,
            review_levels,
            desk_id: desk_id.to_owned(),
            issued_at: Some(bashu_proto::time::now()),
            sha256: token_digest(&token).to_vec(),
        };
        self.kv
            .put(format!("{STAFF_KEY}{id}"), record.encode_to_vec().into())
            .await
            .map_err(store("put staff token"))?;
        Ok(IssuedStaffToken { record: StaffToken { sha256: Vec::new(), ..record }, token })
    }

    /// Every issued staff token, without digests, oldest first.
    pub async fn list(&self) -> Result<Vec<StaffToken>> {
        let keys: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(store("list staff tokens"))?
            .try_collect()
            .await
            .map_err(store("list staff tokens"))?;
        let mut tokens = Vec::new();
        for key in keys.into_iter().filter(|k| k.starts_with(STAFF_KEY)) {
            if let Some(bytes) = self.kv.get(&key).await.map_err(store("read staff token"))? {
                let record = StaffToken::decode(bytes).map_err(|source| Error::Corrupt { key: key.clone(), source })?;
                tokens.push(StaffToken { sha256: Vec::new(), ..record });
            }
        }
        tokens.sort_by_key(|t| (t.issued_at.map(|t| (t.seconds, t.nanos)), t.id.clone()));
        Ok(tokens)
    }

    /// Revokes a token; false if there was none.
    pub async fn revoke(&self, id: &str) -> Result<bool> {
        if !is_token_id(id) {
            return Ok(false);
        }
        let key = format!("{STAFF_KEY}{id}");
        if self.kv.get(&key).await.map_err(store("read staff token"))?.is_none() {
            return Ok(false);
        }
        self.kv.purge(&key).await.map_err(store("revoke staff token"))?;
        self.cache.forget(&key);
        Ok(true)
    }

    /// Who a bearer token belongs to: a configured one, or an issued one (one key read).
    pub async fn authenticate(&self, token: &str) -> Result<std::result::Result<Caller, Refusal>> {
        let digest = token_digest(token);
        if let Some(known) = self.statics.iter().find(|s| digests_equal(&s.digest, &digest)) {
            return Ok(Ok(known.caller.clone()));
        }
        let Some((id, _secret)) = token.strip_prefix(STAFF_PREFIX).and_then(|rest| rest.split_once('_')) else {
            return Ok(Err(Refusal::Malformed));
        };
        if !is_token_id(id) {
            return Ok(Err(Refusal::Malformed));
        }
        let key = format!("{STAFF_KEY}{id}");
        let Some(bytes) = self.cache.get(&key).await? else {
            return Ok(Err(Refusal::Unknown));
        };
        let record = StaffToken::decode(bytes).map_err(|source| Error::Corrupt { key, source })?;
        if !digests_equal(&record.sha256, &digest) {
            return Ok(Err(Refusal::Unknown));
        }
        Ok(Ok(Caller {
            role: record.role(),
            name: record.name,
            review_levels: record.review_levels,
            desk_id: record.desk_id,
        }))
    }
}

fn is_token_id(id: &str) -> bool {
    id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit())
}
