//! Alliances and bilateral partnerships: stored in the registry key-value bucket, read through
//! a live view that follows every change without a restart.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, RwLock},
};

use async_nats::jetstream::kv::{self, Operation};
use bashu_bus::Bus;
use bashu_proto::{
    registry::v1::{Alliance, Desk, IngestDefaults, Partnership, Subscription, Webhook, WebhookFormat},
    story::v1::{Category, SharingPolicy},
};
use futures::StreamExt;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{Counties, Error, Result};

const ALLIANCE_KEY: &str = "alliance.";
const PARTNERSHIP_KEY: &str = "partnership.";
const DESK_KEY: &str = "desk.";
const SUBSCRIPTION_KEY: &str = "subscription.";
const WEBHOOK_KEY: &str = "webhook.";
const INGEST_DEFAULTS_KEY: &str = "ingest-defaults.";
/// `desk-sender.<sha256 of the sender>`: which desk holds a CAP sender. Created by
/// compare-and-set before the desk is written, so two desks can never both take one sender.
const SENDER_CLAIM_KEY: &str = "desk-sender.";
/// How long a claim is honoured when its desk does not (yet) list the sender: long enough for the
/// claiming write to finish, short enough that a writer that died between the claim and the desk
/// blocks no one for long.
const SENDER_CLAIM_GRACE_SECONDS: i64 = 60;

/// The area value of a desk responsible for the whole region.
pub const WHOLE_REGION: &str = "region";

/// Every alliance and partnership at one moment.
#[derive(Clone, Debug, Default)]
pub struct RegistrySnapshot {
    alliances: BTreeMap<String, Alliance>,
    partnerships: BTreeMap<String, Partnership>,
    desks: BTreeMap<String, Desk>,
    subscriptions: BTreeMap<String, Subscription>,
    webhooks: BTreeMap<String, Webhook>,
    ingest_defaults: BTreeMap<String, IngestDefaults>,
}

impl RegistrySnapshot {
    /// An alliance by id.
    pub fn alliance(&self, id: &str) -> Option<&Alliance> {
        self.alliances.get(id)
    }

    /// Every alliance, by id.
    pub fn alliances(&self) -> impl Iterator<Item = &Alliance> {
        self.alliances.values()
    }

    /// Every partnership.
    pub fn partnerships(&self) -> impl Iterator<Item = &Partnership> {
        self.partnerships.values()
    }

    /// The bilateral partners of a county.
    pub fn partners_of<'a>(&'a self, county: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.partnerships.values().filter_map(move |p| {
            if p.county_a == county {
                Some(p.county_b.as_str())
            } else if p.county_b == county {
                Some(p.county_a.as_str())
            } else {
                None
            }
        })
    }

    /// An emergency desk by id.
    pub fn desk(&self, id: &str) -> Option<&Desk> {
        self.desks.get(id)
    }

    /// Every emergency desk, by id.
    pub fn desks(&self) -> impl Iterator<Item = &Desk> {
        self.desks.values()
    }

    /// A county's subscription, if it set one.
    pub fn subscription(&self, county: &str) -> Option<&Subscription> {
        self.subscriptions.get(county)
    }

    /// A county's webhook, if it registered one.
    pub fn webhook(&self, county: &str) -> Option<&Webhook> {
        self.webhooks.get(county)
    }

    /// What a county's submissions fall back to, if it set defaults.
    pub fn ingest_defaults(&self, county: &str) -> Option<&IngestDefaults> {
        self.ingest_defaults.get(county)
    }

    /// Every registered webhook, by county.
    pub fn webhooks(&self) -> impl Iterator<Item = &Webhook> {
        self.webhooks.values()
    }

    fn apply(&mut self, key: &str, value: Option<&[u8]>) -> Result<()> {
        let corrupt = |source| Error::Corrupt { key: key.to_owned(), source };
        if let Some(county) = key.strip_prefix(SUBSCRIPTION_KEY) {
            match value {
                Some(bytes) => {
                    self.subscriptions.insert(county.to_owned(), Subscription::decode(bytes).map_err(corrupt)?)
                }
                None => self.subscriptions.remove(county),
            };
            return Ok(());
        }
        if let Some(county) = key.strip_prefix(INGEST_DEFAULTS_KEY) {
            match value {
                Some(bytes) => {
                    self.ingest_defaults.insert(county.to_owned(), IngestDefaults::decode(bytes).map_err(corrupt)?)
                }
                None => self.ingest_defaults.remove(county),
            };
            return Ok(());
        }
        if let Some(county) = key.strip_prefix(WEBHOOK_KEY) {
            match value {
                Some(bytes) => self.webhooks.insert(county.to_owned(), Webhook::decode(bytes).map_err(corrupt)?),
                None => self.webhooks.remove(county),
            };
            return Ok(());
        }
        if let Some(id) = key.strip_prefix(DESK_KEY) {
            match value {
                Some(bytes) => {
                    self.desks.insert(id.to_owned(), Desk::decode(bytes).map_err(corrupt)?);
                }
                None => {
                    self.desks.remove(id);
                }
            }
            return Ok(());
        }
        if let Some(id) = key.strip_prefix(ALLIANCE_KEY) {
            match value {
                Some(bytes) => {
                    self.alliances.insert(id.to_owned(), Alliance::decode(bytes).map_err(corrupt)?);
                }
                None => {
                    self.alliances.remove(id);
                }
            }
        } else if let Some(pair) = key.strip_prefix(PARTNERSHIP_KEY) {
            match value {
                Some(bytes) => {
                    self.partnerships.insert(pair.to_owned(), Partnership::decode(bytes).map_err(corrupt)?);
                }
                None => {
                    self.partnerships.remove(pair);
                }
            }
        }
        Ok(())
    }
}

/// A live, cheaply cloned view of the sharing graph.
#[derive(Clone, Debug, Default)]
pub struct RegistryView {
    current: Arc<RwLock<Arc<RegistrySnapshot>>>,
}

impl RegistryView {
    /// The graph as it is now.
    pub fn current(&self) -> Arc<RegistrySnapshot> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn update(&self, change: impl FnOnce(&mut RegistrySnapshot) -> Result<()>) -> Result<()> {
        let mut guard = self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = (**guard).clone();
        change(&mut next)?;
        *guard = Arc::new(next);
        Ok(())
    }
}

/// A write as the bucket saw it: what the key held just before (None: nothing) and what it holds
/// now. Audit logs take `before` from here, not from a live view that may not have caught up.
#[derive(Clone, Debug, PartialEq)]
pub struct Replaced<T> {
    /// The value replaced, if any.
    pub before: Option<T>,
    /// The value stored.
    pub stored: T,
}

/// How often a write reads again after another writer changed the key under it.
const CAS_ATTEMPTS: usize = 16;

/// Reads and writes alliances and partnerships, validating them against the counties.
#[derive(Clone)]
pub struct RegistryStore {
    kv: kv::Store,
    counties: Arc<Counties>,
    sender_claim_grace_seconds: i64,
}

impl RegistryStore {
    /// Opens the registry bucket on `bus`.
    pub async fn open(bus: &Bus, counties: Arc<Counties>) -> Result<Self> {
        Ok(Self {
            kv: bus.registry().bucket().await?,
            counties,
            sender_claim_grace_seconds: SENDER_CLAIM_GRACE_SECONDS,
        })
    }

    /// The same store, honouring a sender claim its desk does not list for `seconds` rather than
    /// a minute (a test of a writer that died between the claim and the desk).
    pub fn with_sender_claim_grace(self, seconds: i64) -> Self {
        Self { sender_claim_grace_seconds: seconds, ..self }
    }

    fn current_code(&self, field: String, code: &str) -> Result<String> {
        self.counties
            .resolve(code)
            .map(|r| r.county.code.clone())
            .map_err(|e| Error::Invalid { field, reason: e.to_string() })
    }

    /// Validates and stores an alliance (old member codes become current ones, repeats are
    /// dropped). Returns what was stored.
    pub async fn put_alliance(&self, alliance: Alliance) -> Result<Replaced<Alliance>> {
        if !valid_id(&alliance.id) {
            return Err(Error::Invalid { field: "id".into(), reason: "1-32 of a-z, 0-9 and -".into() });
        }
        if alliance.name.trim().is_empty() {
            return Err(Error::Invalid { field: "name".into(), reason: "required".into() });
        }
        let mut members = BTreeSet::new();
        for (i, code) in alliance.members.iter().enumerate() {
            members.insert(self.current_code(format!("members[{i}]"), code)?);
        }
        if members.len() < 2 {
            return Err(Error::Invalid {
                field: "members".into(),
                reason: "an alliance needs at least two counties".into(),
            });
        }
        let stored = Alliance { members: members.into_iter().collect(), ..alliance };
        self.replace(&format!("{ALLIANCE_KEY}{}", stored.id), |_| Ok(stored.clone())).await
    }

    /// Removes an alliance; returns it (None: there was none).
    pub async fn delete_alliance(&self, id: &str) -> Result<Option<Alliance>> {
        self.remove(&format!("{ALLIANCE_KEY}{id}")).await
    }

    /// Validates and stores a bilateral partnership. Returns what was stored (codes current,
    /// the lower code first).
    pub async fn put_partnership(&self, partnership: Partnership) -> Result<Replaced<Partnership>> {
        let a = self.current_code("county_a".into(), &partnership.county_a)?;
        let b = self.current_code("county_b".into(), &partnership.county_b)?;
        if a == b {
            return Err(Error::Invalid { field: "county_b".into(), reason: "a county cannot partner itself".into() });
        }
        let (county_a, county_b) = if a < b { (a, b) } else { (b, a) };
        let stored = Partnership { county_a, county_b, note: partnership.note };
        self.replace(&format!("{PARTNERSHIP_KEY}{}.{}", stored.county_a, stored.county_b), |_| Ok(stored.clone())).await
    }

    /// Ends a bilateral partnership (codes in either order, old codes resolved); returns it
    /// (None: there was none).
    pub async fn delete_partnership(&self, county_a: &str, county_b: &str) -> Result<Option<Partnership>> {
        let a = self.current_code("county_a".into(), county_a)?;
        let b = self.current_code("county_b".into(), county_b)?;
        let (a, b) = if a < b { (a, b) } else { (b, a) };
        self.remove(&format!("{PARTNERSHIP_KEY}{a}.{b}")).await
    }

    /// Replaces a desk's public key (empty: the desk can no longer sign).
    pub async fn set_desk_key(&self, id: &str, public_key: Vec<u8>) -> Result<Replaced<Desk>> {
        self.replace(&format!("{DESK_KEY}{id}"), |desk: Option<&Desk>| match desk {
            Some(desk) => Ok(Desk { public_key: public_key.clone(), ..desk.clone() }),
            None => Err(Error::Invalid { field: "desk_id".into(), reason: format!("no desk {id:?}") }),
        })
        .await
    }

    /// The value at `key` as the bucket holds it now, with its revision.
    async fn read<T: Message + Default>(&self, key: &str) -> Result<Option<(T, u64)>> {
        let entry = self.kv.entry(key).await.map_err(|e| Error::Store { operation: "get", source: e.into() })?;
        match entry {
            Some(entry) if matches!(entry.operation, Operation::Put) => {
                let value = T::decode(entry.value).map_err(|source| Error::Corrupt { key: key.to_owned(), source })?;
                Ok(Some((value, entry.revision)))
            }
            _ => Ok(None),
        }
    }

    /// Stores `next(current)` at `key` by compare-and-set, reading again when another writer
    /// (another admin replica, a county's own door) changed the key in between, so `before` is
    /// exactly what this write replaced.
    async fn replace<T: Message + Default + Clone>(
        &self,
        key: &str,
        mut next: impl FnMut(Option<&T>) -> Result<T>,
    ) -> Result<Replaced<T>> {
        for _ in 0..CAS_ATTEMPTS {
            let current = self.read::<T>(key).await?;
            let stored = next(current.as_ref().map(|(value, _)| value))?;
            let bytes = stored.encode_to_vec().into();
            let written = match &current {
                Some((_, revision)) => match self.kv.update(key, bytes, *revision).await {
                    Ok(_) => true,
                    Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => false,
                    Err(e) => return Err(Error::Store { operation: "update", source: e.into() }),
                },
                None => match self.kv.create(key, bytes).await {
                    Ok(_) => true,
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => false,
                    Err(e) => return Err(Error::Store { operation: "create", source: e.into() }),
                },
            };
            if written {
                return Ok(Replaced { before: current.map(|(value, _)| value), stored });
            }
        }
        Err(Error::Store { operation: "update", source: format!("{key} kept changing under this write").into() })
    }

    /// Deletes `key` by compare-and-set; returns what it held (None: nothing, nothing done).
    async fn remove<T: Message + Default>(&self, key: &str) -> Result<Option<T>> {
        for _ in 0..CAS_ATTEMPTS {
            let Some((value, revision)) = self.read::<T>(key).await? else { return Ok(None) };
            match self.kv.delete_expect_revision(key, Some(revision)).await {
                Ok(()) => return Ok(Some(value)),
                Err(e) if e.kind() == kv::DeleteErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(Error::Store { operation: "delete", source: e.into() }),
            }
        }
        Err(Error::Store { operation: "delete", source: format!("{key} kept changing under this delete").into() })
    }

    /// Validates and stores an emergency desk: a 32-byte ed25519 key, and areas that are
    /// `region` or the code of a province, prefecture or county of the region. A desk given
    /// without a key keeps the one it has: keys change through [`Self::set_desk_key`].
    pub async fn put_desk(&self, desk: Desk) -> Result<Replaced<Desk>> {
        let invalid = |field: &str, reason: &str| Error::Invalid { field: field.into(), reason: reason.into() };
        let invalid_at = |field: String, reason: &str| Error::Invalid { field, reason: reason.into() };
        if !valid_id(&desk.id) {
            return Err(invalid("id", "1-32 of a-z, 0-9 and -"));
        }
        if desk.name.trim().is_empty() {
            return Err(invalid("name", "required"));
        }
        if !matches!(desk.public_key.len(), 0 | 32) {
            return Err(invalid("public_key", "an ed25519 public key of 32 bytes, or none (the desk cannot sign)"));
        }
        if desk.areas.is_empty() {
            return Err(invalid("areas", "a desk needs at least one area"));
        }
        let mut areas = BTreeSet::new();
        for (i, area) in desk.areas.iter().enumerate() {
            let known = area == WHOLE_REGION
                || match area.len() {
                    2 | 4 => area.bytes().all(|b| b.is_ascii_digit()) && self.counties.within(area).next().is_some(),
                    6 => self.counties.get(area).is_some(),
                    _ => false,
                };
            if !known {
                return Err(Error::Invalid {
                    field: format!("areas[{i}]"),
                    reason: format!("{area:?} is not `region` nor a province, prefecture or county code of the region"),
                });
            }
            areas.insert(area.clone());
        }
        let senders = self.checked_senders(&desk.id, &desk.senders).await?;
        for (i, certificate) in desk.xml_signature_certificates.iter().enumerate() {
            // A DER certificate is a SEQUENCE; the alerts service parses it fully and names it
            // when it cannot.
            if certificate.first() != Some(&0x30) || certificate.len() > 16 * 1024 {
                return Err(invalid_at(
                    format!("xml_signature_certificates[{i}]"),
                    "an X.509 certificate in DER of at most 16 KiB",
                ));
            }
        }
        if desk.require_xml_signature && desk.xml_signature_certificates.is_empty() {
            return Err(invalid("require_xml_signature", "needs at least one certificate to verify signatures with"));
        }
        let mut claimed = Vec::new();
        for sender in &senders {
            let field = format!("senders[{}]", desk.senders.iter().position(|s| s == sender).unwrap_or_default());
            match self.claim_sender(&desk.id, sender, field).await {
                Ok(true) => claimed.push(sender.clone()),
                Ok(false) => {}
                Err(error) => {
                    self.release_senders(&desk.id, &claimed).await;
                    return Err(error);
                }
            }
        }
        let checked = Desk { areas: areas.into_iter().collect(), senders, ..desk };
        let written = self
            .replace(&format!("{DESK_KEY}{}", checked.id), |existing: Option<&Desk>| {
                let mut stored = checked.clone();
                if let Some(existing) = existing.filter(|_| stored.public_key.is_empty()) {
                    stored.public_key = existing.public_key.clone();
                }
                Ok(stored)
            })
            .await;
        match &written {
            Ok(Replaced { before: Some(before), stored }) => {
                let dropped: Vec<String> =
                    before.senders.iter().filter(|s| !stored.senders.contains(s)).cloned().collect();
                self.release_senders(&stored.id, &dropped).await;
            }
            Ok(_) => {}
            Err(_) => self.release_senders(&checked.id, &claimed).await,
        }
        written
    }

    /// Claims `sender` for desk `desk_id`; true if this call made the claim, false if the desk
    /// held it already. Refused when another desk holds it: one that lists it, or one whose claim
    /// is younger than the grace period (its write may be under way).
    async fn claim_sender(&self, desk_id: &str, sender: &str, field: String) -> Result<bool> {
        let key = sender_claim_key(sender);
        let store_error =
            |operation, e: Box<dyn std::error::Error + Send + Sync>| Error::Store { operation, source: e };
        for _ in 0..CAS_ATTEMPTS {
            let entry = self.kv.entry(&key).await.map_err(|e| store_error("get", e.into()))?;
            let Some(entry) = entry.filter(|e| matches!(e.operation, Operation::Put)) else {
                match self.kv.create(&key, desk_id.as_bytes().to_vec().into()).await {
                    Ok(_) => return Ok(true),
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(store_error("create", e.into())),
                }
            };
            let holder = String::from_utf8_lossy(&entry.value).into_owned();
            if holder == desk_id {
                return Ok(false);
            }
            let listed = self
                .read::<Desk>(&format!("{DESK_KEY}{holder}"))
                .await?
                .is_some_and(|(desk, _)| desk.senders.iter().any(|s| s == sender));
            let age = unix_now() - entry.created.unix_timestamp();
            if listed || age < self.sender_claim_grace_seconds {
                return Err(Error::Invalid { field, reason: format!("{sender} is desk {holder}'s sender") });
            }
            // Left by a writer that died before writing its desk, or by a desk that no longer
            // lists it: taken over.
            match self.kv.update(&key, desk_id.as_bytes().to_vec().into(), entry.revision).await {
                Ok(_) => return Ok(true),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                Err(e) => return Err(store_error("update", e.into())),
            }
        }
        Err(Error::Store { operation: "update", source: format!("{key} kept changing under this claim").into() })
    }

    /// Gives up desk `desk_id`'s claims on `senders` (those another desk took since are left
    /// alone). Best effort: a claim left behind lapses once its desk no longer lists the sender.
    async fn release_senders(&self, desk_id: &str, senders: &[String]) {
        for sender in senders {
            let key = sender_claim_key(sender);
            let Ok(Some(entry)) = self.kv.entry(&key).await else { continue };
            let held = matches!(entry.operation, Operation::Put) && entry.value.as_ref() == desk_id.as_bytes();
            if held && let Err(error) = self.kv.delete_expect_revision(&key, Some(entry.revision)).await {
                warn!(desk = desk_id, error = %error, "a desk's sender claim was not released; it lapses by itself");
            }
        }
    }

    /// A desk's CAP senders: at least one, each as CAP allows it (no spaces, commas, `<` or `&`),
    /// none another desk's.
    async fn checked_senders(&self, desk_id: &str, senders: &[String]) -> Result<Vec<String>> {
        let invalid = |field: String, reason: String| Error::Invalid { field, reason };
        if senders.is_empty() {
            return Err(invalid(
                "senders".into(),
                "a desk needs at least one CAP sender, e.g. mianyang@example.gov.cn".into(),
            ));
        }
        let taken: BTreeMap<String, String> = self
            .load()
            .await?
            .desks()
            .filter(|other| other.id != desk_id)
            .flat_map(|other| other.senders.iter().map(|s| (s.clone(), other.id.clone())))
            .collect();
        let mut unique = BTreeSet::new();
        for (i, sender) in senders.iter().enumerate() {
            let allowed = !sender.is_empty()
                && sender.chars().count() <= 256
                && !sender.chars().any(|c| c.is_whitespace() || matches!(c, ',' | '<' | '&'));
            if !allowed {
                return Err(invalid(
                    format!("senders[{i}]"),
                    "1-256 characters, without spaces, commas, < or &".into(),
                ));
            }
            if let Some(owner) = taken.get(sender) {
                return Err(invalid(format!("senders[{i}]"), format!("{sender} is desk {owner}'s sender")));
            }
            unique.insert(sender.clone());
        }
        Ok(unique.into_iter().collect())
    }

    /// Validates and stores a county's subscription (replacing any earlier one).
    pub async fn put_subscription(&self, subscription: Subscription) -> Result<Replaced<Subscription>> {
        let county = self.current_code("county".into(), &subscription.county)?;
        for (i, category) in subscription.categories.iter().enumerate() {
            if bashu_proto::story::v1::Category::from_str_name(category).is_none_or(|c| c as i32 == 0) {
                return Err(Error::Invalid {
                    field: format!("categories[{i}]"),
                    reason: format!("{category:?} is not a story category"),
                });
            }
        }
        for (i, province) in subscription.origin_provinces.iter().enumerate() {
            if !matches!(province.as_str(), "50" | "51") {
                return Err(Error::Invalid {
                    field: format!("origin_provinces[{i}]"),
                    reason: "50 (Chongqing) or 51 (Sichuan)".into(),
                });
            }
        }
        let stored = Subscription { county, ..subscription };
        self.replace(&format!("{SUBSCRIPTION_KEY}{}", stored.county), |_| Ok(stored.clone())).await
    }

    /// Validates and stores a county's webhook (replacing any earlier one); its URL must be one
    /// `egress` permits (https, and not an inside address, unless configured otherwise).
    pub async fn put_webhook(&self, webhook: Webhook, egress: &bashu_egress::Config) -> Result<Replaced<Webhook>> {
        let county = self.current_code("county".into(), &webhook.county)?;
        if webhook.url.len() > 2048 || webhook.url.chars().any(char::is_whitespace) {
            return Err(Error::Invalid { field: "url".into(), reason: "an https:// URL of at most 2048 bytes".into() });
        }
        if let Err(error) = egress.check_webhook_url(&webhook.url) {
            return Err(Error::Invalid { field: "url".into(), reason: error.to_string() });
        }
        if webhook.secret.len() < 32 {
            return Err(Error::Invalid { field: "secret".into(), reason: "at least 32 random bytes".into() });
        }
        let format = if webhook.format == 0 { WebhookFormat::Ninjs as i32 } else { webhook.format };
        let checked = Webhook { county, format, ..webhook };
        self.replace(&format!("{WEBHOOK_KEY}{}", checked.county), |earlier: Option<&Webhook>| {
            // A county replacing its webhook keeps the date it first registered one.
            let registered_at = earlier.and_then(|w| w.registered_at).or_else(|| Some(bashu_proto::time::now()));
            Ok(Webhook { registered_at, ..checked.clone() })
        })
        .await
    }

    /// Validates and stores what a county's submissions fall back to (replacing any earlier
    /// defaults): a category that exists, and a sharing policy that names someone who exists.
    pub async fn put_ingest_defaults(&self, defaults: IngestDefaults) -> Result<Replaced<IngestDefaults>> {
        let county = self.current_code("county".into(), &defaults.county)?;
        if Category::try_from(defaults.category).is_err() {
            return Err(Error::Invalid { field: "category".into(), reason: "not a story category".into() });
        }
        let sharing = match defaults.sharing {
            Some(sharing) => Some(self.checked_sharing(sharing).await?),
            None => None,
        };
        let stored = IngestDefaults { county, sharing, ..defaults };
        self.replace(&format!("{INGEST_DEFAULTS_KEY}{}", stored.county), |_| Ok(stored.clone())).await
    }

    /// A sharing policy whose alliances exist and whose counties carry current codes.
    async fn checked_sharing(&self, sharing: SharingPolicy) -> Result<SharingPolicy> {
        let invalid = |field: String, reason: String| Error::Invalid { field, reason };
        if !sharing.names_someone() {
            return Err(invalid(
                "sharing".into(),
                "shared with nobody: set partners, alliances, province, region or counties".into(),
            ));
        }
        for (i, alliance) in sharing.alliances.iter().enumerate() {
            let stored = self
                .kv
                .get(format!("{ALLIANCE_KEY}{alliance}"))
                .await
                .map_err(|e| Error::Store { operation: "get", source: e.into() })?;
            if stored.is_none() {
                return Err(invalid(format!("sharing.alliances[{i}]"), format!("no alliance {alliance:?}")));
            }
        }
        let mut counties = BTreeSet::new();
        for (i, code) in sharing.counties.iter().enumerate() {
            counties.insert(self.current_code(format!("sharing.counties[{i}]"), code)?);
        }
        Ok(SharingPolicy { counties: counties.into_iter().collect(), ..sharing })
    }

    /// Removes an emergency desk (its areas, its key and its senders); returns it (None: there
    /// was none).
    pub async fn delete_desk(&self, id: &str) -> Result<Option<Desk>> {
        let removed = self.remove::<Desk>(&format!("{DESK_KEY}{id}")).await?;
        if let Some(desk) = &removed {
            self.release_senders(id, &desk.senders).await;
        }
        Ok(removed)
    }

    /// Removes a county's webhook; returns it (None: there was none).
    pub async fn delete_webhook(&self, county: &str) -> Result<Option<Webhook>> {
        self.remove(&format!("{WEBHOOK_KEY}{county}")).await
    }

    /// Reads the whole graph once.
    pub async fn load(&self) -> Result<RegistrySnapshot> {
        let mut graph = RegistrySnapshot::default();
        let mut keys = self.kv.keys().await.map_err(|e| Error::Store { operation: "list keys", source: e.into() })?;
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| Error::Store { operation: "list keys", source: e.into() })?;
            let value = self.kv.get(&key).await.map_err(|e| Error::Store { operation: "get", source: e.into() })?;
            graph.apply(&key, value.as_deref())?;
        }
        Ok(graph)
    }

    /// A view that is loaded now and then follows every change until `shutdown`. When the watch
    /// ends (its connection was lost), it is opened again and the whole view reloaded, so nothing
    /// changed in between is missed.
    pub async fn watch(&self, shutdown: CancellationToken) -> Result<RegistryView> {
        let view = RegistryView::default();
        let changes = self.follow_from_now(&view).await?;
        let (store, live) = (self.clone(), view.clone());
        tokio::spawn(async move {
            let mut changes = Some(changes);
            while !shutdown.is_cancelled() {
                if let Some(mut watch) = changes.take() {
                    loop {
                        let change = tokio::select! {
                            _ = shutdown.cancelled() => return,
                            change = watch.next() => change,
                        };
                        match change {
                            Some(Ok(entry)) => {
                                let value = matches!(entry.operation, Operation::Put).then_some(entry.value.as_ref());
                                if let Err(error) = live.update(|graph| graph.apply(&entry.key, value)) {
                                    warn!(key = %entry.key, error = %error, "registry change ignored");
                                }
                            }
                            Some(Err(error)) => warn!(error = %error, "registry watch error"),
                            None => break,
                        }
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
                match store.follow_from_now(&live).await {
                    Ok(watch) => changes = Some(watch),
                    Err(error) => warn!(error = %error, "registry watch not reopened yet; retrying"),
                }
            }
        });
        Ok(view)
    }

    /// Opens a watch, then loads the whole registry into `view` (watch first: a change made during
    /// the load is seen by the watch too).
    async fn follow_from_now(&self, view: &RegistryView) -> Result<kv::Watch> {
        let changes = self.kv.watch_all().await.map_err(|e| Error::Store { operation: "watch", source: e.into() })?;
        let graph = self.load().await?;
        view.update(|current| {
            *current = graph;
            Ok(())
        })?;
        Ok(changes)
    }
}

fn sender_claim_key(sender: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{SENDER_CLAIM_KEY}{}", hex::encode(Sha256::digest(sender.as_bytes())))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The demo seed of `make run` and the tests: three bilateral partnerships named in the founding
/// study, and an example Fujiang (涪江) river alliance. The alliance is an example, not a record:
/// no public member list exists.
pub async fn demo_seed(store: &RegistryStore) -> Result<()> {
    for (a, b, note) in [
        ("511083", "500153", "隆昌市–荣昌区: joint production across the border"),
        ("500113", "510115", "巴南区–温江区: bilateral agreement"),
        ("500103", "510105", "渝中区–青羊区: bilateral agreement"),
    ] {
        store.put_partnership(Partnership { county_a: a.into(), county_b: b.into(), note: note.into() }).await?;
    }
    store
        .put_alliance(Alliance {
            id: "fujiang".into(),
            name: "涪江流域融媒联盟 (Fujiang river media alliance)".into(),
            members: [
                "510727", "510781", "510703", "510704", "510722", "510981", "510903", "500152", "500151", "500117",
            ]
            .map(String::from)
            .to_vec(),
            note: "example, not a record: no public member list was found".into(),
        })
        .await?;
    Ok(())
}
