//! The alert service's writes to the alert state bucket (its layout and read side are the
//! domain's contract, `bashu_alerts_core::AlertState`): intake's records, created once, and the
//! tracker's chains and escalation-step claims, changed only by compare-and-set.

use std::time::{Duration, SystemTime};

use async_nats::jetstream::kv;
use bashu_alerts_core::AlertState;
use bashu_proto::{
    Timestamp,
    alert::v1::{AlertChain, AlertRecord},
};
use prost::Message;

use crate::{Error, Result};

#[derive(Clone)]
pub(crate) struct StateStore {
    read: AlertState,
    kv: kv::Store,
}

impl StateStore {
    pub(crate) fn new(kv: kv::Store) -> Self {
        Self { read: AlertState::new(kv.clone()), kv }
    }

    pub(crate) async fn record(&self, alert_key: &str) -> Result<Option<AlertRecord>> {
        Ok(self.read.record(alert_key).await?)
    }

    pub(crate) async fn chain_of_alert(&self, alert_key: &str) -> Result<AlertChain> {
        Ok(self.read.chain_of_alert(alert_key).await?)
    }

    pub(crate) async fn chain_at(&self, chain_key: &str) -> Result<Option<(AlertChain, u64)>> {
        Ok(self.read.chain_at(chain_key).await?)
    }

    /// The bucket, for following its chains.
    pub(crate) fn bucket(&self) -> &kv::Store {
        &self.kv
    }

    /// Stores a record unless one exists; returns the one that was there, if any.
    pub(crate) async fn create_record(&self, record: &AlertRecord) -> Result<Option<AlertRecord>> {
        let key = AlertState::record_key(&record.alert_key);
        match self.kv.create(&key, record.encode_to_vec().into()).await {
            Ok(_) => Ok(None),
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => self.record(&record.alert_key).await,
            Err(error) => Err(Error::store(error)),
        }
    }

    /// Writes a chain if nobody changed it since `revision` (0: if it does not exist yet);
    /// false: somebody did, read it again.
    pub(crate) async fn store_chain(&self, chain: &AlertChain, revision: u64) -> Result<bool> {
        let key = AlertState::chain_key(&chain.chain_key);
        let value = chain.encode_to_vec().into();
        if revision == 0 {
            match self.kv.create(&key, value).await {
                Ok(_) => Ok(true),
                Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
                Err(error) => Err(Error::store(error)),
            }
        } else {
            match self.kv.update(&key, value, revision).await {
                Ok(_) => Ok(true),
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
                Err(error) => Err(Error::store(error)),
            }
        }
    }

    /// Claims one escalation step of one county for `hold`: true if this process may take it
    /// (nobody claimed it, or the claim of a process that did not finish in time ran out).
    pub(crate) async fn claim_step(&self, chain_key: &str, county: &str, step: u32, hold: Duration) -> Result<bool> {
        let key = format!("claim.{chain_key}.{county}.{step}");
        let until = bashu_proto::time::from_system_time(SystemTime::now() + hold).encode_to_vec();
        match self.kv.create(&key, until.clone().into()).await {
            Ok(_) => return Ok(true),
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(error) => return Err(Error::store(error)),
        }
        let Some(entry) = self.kv.entry(key.as_str()).await.map_err(Error::store)? else { return Ok(false) };
        let expired = Timestamp::decode(entry.value)
            .ok()
            .and_then(|t| bashu_proto::time::to_system_time(&t))
            .is_none_or(|t| t <= SystemTime::now());
        if !expired {
            return Ok(false);
        }
        match self.kv.update(&key, until.into(), entry.revision).await {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(error) => Err(Error::store(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bashu_bus::{Bus, Subjects, Topology};

    use super::StateStore;

    #[tokio::test]
    async fn a_step_whose_tracker_died_is_taken_over_by_exactly_one_other_once_its_claim_runs_out() {
        let nats = bashu_test_support::NatsServer::start().await;
        let bus =
            Bus::connect(&nats.url(), "claims", Subjects::new("claims").unwrap(), Topology::default()).await.unwrap();
        let store = StateStore::new(bus.alerts().state_bucket().await.unwrap());
        let hold = Duration::from_millis(400);
        assert!(store.claim_step("chain", "510781", 1, hold).await.unwrap(), "the first tracker claims the step");
        assert!(!store.claim_step("chain", "510781", 1, hold).await.unwrap(), "nobody else while it is held");
        assert!(store.claim_step("chain", "510781", 2, hold).await.unwrap(), "the next step is a claim of its own");
        assert!(store.claim_step("chain", "510703", 1, hold).await.unwrap(), "so is another county's");

        // The first tracker dies without finishing: once its claim has run out, two others race
        // for the step and one of them gets it.
        tokio::time::sleep(hold + Duration::from_millis(100)).await;
        let (a, b) =
            tokio::join!(store.claim_step("chain", "510781", 1, hold), store.claim_step("chain", "510781", 1, hold));
        assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|won| **won).count(), 1, "exactly one takes it over");
        assert!(!store.claim_step("chain", "510781", 1, hold).await.unwrap(), "and holds it in its turn");
    }
}
