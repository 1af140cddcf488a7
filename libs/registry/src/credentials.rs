//! County tokens: issued and revoked through the admin API, stored as sha256 digests in the
//! CREDENTIALS bucket, checked in constant time. A token names its county and id
//! (`bashu_<county>_<id>_<secret>`) so that checking it is one key read, and a revoked token
//! is refused on the very next request.

use async_nats::jetstream::kv;
use bashu_bus::Bus;
use bashu_proto::registry::v1::CountyToken;
use prost::Message;
use sha2::{Digest, Sha256};

use crate::{Counties, Error, Result};

pub(crate) fn store<E: std::error::Error + Send + Sync + 'static>(operation: &'static str) -> impl Fn(E) -> Error {
    move |source| Error::Store { operation, source: Box::new(source) }
}

const TOKEN_KEY: &str = "county-token.";
const PREFIX: &str = "bashu";

/// A token as issued: the secret is shown this once and never stored.
#[derive(Clone)]
pub struct IssuedToken {
    /// The token's record (no secret).
    pub record: CountyToken,
    /// The bearer token to give to the county.
    pub token: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken").field("record", &self.record).field("token", &"<redacted>").finish()
    }
}

/// Why a presented token was refused (the caller answers 401 for every one of them alike).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// Not of the form of a Bashu token.
    #[error("not a Bashu token")]
    Malformed,
    /// No such token, revoked, or the secret does not match.
    #[error("unknown or revoked token")]
    Unknown,
}

/// The county tokens in the CREDENTIALS bucket.
#[derive(Clone)]
pub struct CountyTokens {
    kv: kv::Store,
    counties: std::sync::Arc<Counties>,
    cache: crate::CredentialCache,
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system's random source");
    hex::encode(buffer)
}

/// The sha256 of a bearer token: what Bashu stores and compares instead of the token.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two digests without stopping at the first difference.
pub fn digests_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `authorization: Bearer <token>` value.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    authorization.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).filter(|t| !t.is_empty())
}

impl CountyTokens {
    /// Opens (creating if needed) the CREDENTIALS bucket.
    pub async fn open(bus: &Bus, counties: std::sync::Arc<Counties>) -> Result<Self> {
        let kv = bus.registry().credentials_bucket().await?;
        Ok(Self { cache: crate::CredentialCache::new(kv.clone()), kv, counties })
    }

    /// Checks tokens against `cache` (followed by the process) instead of reading the bucket.
    pub fn with_cache(self, cache: crate::CredentialCache) -> Self {
        Self { cache, ..self }
    }

    fn key(county: &str, id: &str) -> String {
        format!("{TOKEN_KEY}{county}.{id}")
    }

    /// Issues a new token for a county (old codes resolved). Earlier tokens stay valid until revoked.
    pub async fn issue(&self, county: &str, label: &str) -> Result<IssuedToken> {
        let county = self.counties.resolve(county)?.county.code.clone();
        let id = random_hex(4);
        let token = format!("{PREFIX}_{county}_{id}_{}", random_hex(24));
        let record = CountyToken {
            county: county.clone(),
            id: id.clone(),
            label: label.to_owned(),
            issued_at: Some(bashu_proto::time::now()),
            sha256: token_digest(&token).to_vec(),
        };
        self.kv.put(Self::key(&county, &id), record.encode_to_vec().into()).await.map_err(store("put county token"))?;
        Ok(IssuedToken { record: CountyToken { sha256: Vec::new(), ..record }, token })
    }

    /// A county's tokens, without their digests.
    pub async fn list(&self, county: &str) -> Result<Vec<CountyToken>> {
        use futures::TryStreamExt;
        let county = self.counties.resolve(county)?.county.code.clone();
        let prefix = Self::key(&county, "");
        let keys: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(store("list county tokens"))?
            .try_collect()
            .await
            .map_err(store("list county tokens"))?;
        let mut tokens = Vec::new();
        for key in keys.into_iter().filter(|k| k.starts_with(&prefix)) {
            if let Some(bytes) = self.kv.get(&key).await.map_err(store("read county token"))? {
                let record =
                    CountyToken::decode(bytes).map_err(|source| Error::Corrupt { key: key.clone(), source })?;
                tokens.push(CountyToken { sha256: Vec::new(), ..record });
            }
        }
        tokens.sort_by(|a, b| a.issued_at.map(|t| t.seconds).cmp(&b.issued_at.map(|t| t.seconds)));
        Ok(tokens)
    }

    /// Revokes one token; false if there was none.
    pub async fn revoke(&self, county: &str, id: &str) -> Result<bool> {
        let county = self.counties.resolve(county)?.county.code.clone();
        let key = Self::key(&county, id);
        if self.kv.get(&key).await.map_err(store("read county token"))?.is_none() {
            return Ok(false);
        }
        self.kv.purge(&key).await.map_err(store("revoke county token"))?;
        self.cache.forget(&key);
        Ok(true)
    }

    /// The county a bearer token acts for.
    pub async fn authenticate(&self, token: &str) -> Result<std::result::Result<String, Refusal>> {
        let mut parts = token.splitn(4, '_');
        let (Some(PREFIX), Some(county), Some(id), Some(_secret)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Ok(Err(Refusal::Malformed));
        };
        let id_ok = id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if county.len() != 6 || !county.bytes().all(|b| b.is_ascii_digit()) || !id_ok {
            return Ok(Err(Refusal::Malformed));
        }
        let key = Self::key(county, id);
        let Some(bytes) = self.cache.get(&key).await? else {
            return Ok(Err(Refusal::Unknown));
        };
        let record = CountyToken::decode(bytes).map_err(|source| Error::Corrupt { key, source })?;
        if digests_equal(&record.sha256, &token_digest(token)) {
            Ok(Ok(record.county))
        } else {
            Ok(Err(Refusal::Unknown))
        }
    }
}
