//! Reading what the streams hold, for operators and tests: counts per subject, and the events
//! stored under a subject filter.

use std::collections::BTreeMap;

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures::{StreamExt, TryStreamExt};

use crate::{Error, Event, Operation, Operations, Result};

impl Operations<'_> {
    /// How many messages each subject matching `filter` holds in the stream `base`.
    pub async fn subject_counts(&self, base: &str, filter: &str) -> Result<BTreeMap<String, u64>> {
        let stream = self.stream(base).await?;
        stream
            .info_with_subjects(filter)
            .await
            .map_err(|e| Error::nats(Operation::Read, base, e))?
            .map_ok(|(subject, count)| (subject, count as u64))
            .try_collect()
            .await
            .map_err(|e| Error::nats(Operation::Read, base, e))
    }

    /// Every event stored in stream `base` under `filter`, oldest first, decoded.
    pub async fn read_all<E: Event>(&self, base: &str, filter: &str) -> Result<Vec<E>> {
        let total: u64 = self.subject_counts(base, filter).await?.values().sum();
        if total == 0 {
            return Ok(Vec::new());
        }
        let stream = self.stream(base).await?;
        let consumer = stream
            .create_consumer(OrderedConfig {
                filter_subject: filter.to_owned(),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::nats(Operation::Read, filter, e))?;
        let mut messages = consumer.messages().await.map_err(|e| Error::nats(Operation::Read, filter, e))?;
        let mut events = Vec::with_capacity(total as usize);
        while (events.len() as u64) < total {
            let Some(message) = messages.next().await else { break };
            let message = message.map_err(|e| Error::nats(Operation::Read, filter, e))?;
            let event = E::decode(message.payload.clone()).map_err(|e| Error::nats(Operation::Decode, E::TYPE, e))?;
            events.push(event);
        }
        Ok(events)
    }
}
