//! A county's ingest defaults: the category and sharing policy its submissions fall back to
//! where they leave them out (plain ninjs from a CMS has neither). The county sets its own;
//! every change is in the operators' audit log under the county's name.

use bashu_proto::{admin::v1::AuditEvent, registry::v1::IngestDefaults, story::v1::Story};
use sha2::{Digest, Sha256};

use crate::{Error, FieldError, Ingest, Result};

impl Ingest {
    /// The county's defaults (empty when it set none).
    pub fn ingest_defaults(&self, county: &str) -> IngestDefaults {
        let snapshot = self.inner.registry.current();
        snapshot
            .ingest_defaults(county)
            .cloned()
            .unwrap_or_else(|| IngestDefaults { county: county.to_owned(), ..Default::default() })
    }

    /// Replaces the county's defaults, as the county: the body may name no other county.
    pub async fn put_ingest_defaults(&self, county: &str, defaults: IngestDefaults) -> Result<IngestDefaults> {
        if !defaults.county.is_empty() && defaults.county != county {
            return Err(Error::Forbidden(format!(
                "this token belongs to county {county}; it cannot set the defaults of {}",
                defaults.county
            )));
        }
        let changed = self
            .inner
            .registry_store
            .put_ingest_defaults(IngestDefaults { county: county.to_owned(), ..defaults })
            .await
            .map_err(|error| match error {
                bashu_registry::Error::Invalid { field, reason } => {
                    Error::InvalidRequest(vec![FieldError::new(field, reason)])
                }
                other => Error::store(other),
            })?;
        let target = format!("ingest defaults of {county}");
        self.audit(county, "PUT /v1/ingest-defaults", target, changed.before, &changed.stored).await?;
        Ok(changed.stored)
    }

    /// Fills what the story leaves out from its origin's defaults.
    pub(crate) fn with_defaults(&self, mut story: Story) -> Story {
        let origin = self.inner.counties.resolve(&story.origin_county).map(|r| r.county.code.clone());
        let Ok(origin) = origin else { return story };
        if let Some(defaults) = self.inner.registry.current().ingest_defaults(&origin) {
            if story.category == 0 {
                story.category = defaults.category;
            }
            if story.sharing.is_none() {
                story.sharing = defaults.sharing.clone();
            }
        }
        story
    }

    /// Records a county's change in the operators' audit log (`bashu.audit.ingest`). The change
    /// is made already; if the log cannot be written the county is told to retry.
    async fn audit<T: serde::Serialize>(
        &self,
        county: &str,
        method: &str,
        target: String,
        before: Option<T>,
        after: &T,
    ) -> Result<()> {
        let json = |value: &T| serde_json::to_string(value).unwrap_or_default();
        let at = bashu_proto::time::now();
        let after_json = json(after);
        let id = Sha256::digest(format!("{county}\n{method}\n{after_json}\n{}.{}", at.seconds, at.nanos));
        let event = AuditEvent {
            id: format!("ingest-{}", &hex::encode(id)[..24]),
            actor: county.to_owned(),
            role: "COUNTY".into(),
            method: method.to_owned(),
            target,
            at: Some(at),
            before_json: before.as_ref().map(json).unwrap_or_default(),
            after_json,
            service: "ingest".into(),
        };
        self.inner.bus.publish(&event).await?;
        Ok(())
    }
}
