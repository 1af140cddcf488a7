//! The contribution ledger: what each story of a plan contributed, recorded from the story
//! ledger's own events (ingest's submissions, moderation's decisions, counties' reuse notes).
//! Every merge only adds (the earliest time, the union of versions and counties), so a
//! redelivered or reordered event leaves the same record.

use bashu_bus::{ContributionSource, Delivery, Failure};
use bashu_proto::story::v1::{PublicationStatus, Story, Verdict};

use crate::{Coverage, Error};

/// Events of one story are recorded in stream order; different stories side by side.
pub(crate) fn order_key(event: &ContributionSource) -> String {
    match event {
        ContributionSource::Submitted(submitted) => story_name(submitted.story.as_ref()),
        ContributionSource::Decided(decision) => story_name(decision.story.as_ref()),
        ContributionSource::Published(published) => format!("{}.{}", published.origin_county, published.story_id),
        ContributionSource::Used(used) => format!("{}.{}", used.origin_county, used.story_id),
        ContributionSource::RefusedNote(_) => String::new(),
    }
}

fn story_name(story: Option<&Story>) -> String {
    story.map(|s| format!("{}.{}", s.origin_county, s.id)).unwrap_or_default()
}

impl Coverage {
    /// Records one event's part of a contribution; most stories belong to no plan and are
    /// passed over.
    pub(crate) async fn record(&self, delivery: Delivery<ContributionSource>) -> Result<(), Failure> {
        match delivery.event {
            ContributionSource::Submitted(submitted) => {
                let Some(story) = submitted.story.filter(|s| s.coverage.is_some()) else { return Ok(()) };
                let received = submitted.received_at.unwrap_or_else(bashu_proto::time::now);
                let (plan, contribution) = self
                    .merge(&story, |c| {
                        let earlier = c
                            .submitted_at
                            .get(&story.version)
                            .is_some_and(|t| (t.seconds, t.nanos) <= (received.seconds, received.nanos));
                        if earlier {
                            return false;
                        }
                        c.submitted_at.insert(story.version, received);
                        true
                    })
                    .await?;
                // Its approval came first (a redelivery after a crash, say): the phase was
                // delivered when the county sent it, which only now is known.
                if contribution.approved_versions.contains(&story.version) && !contribution.withdrawn {
                    let phase = story.coverage.as_ref().map(|c| c.phase.clone()).unwrap_or_default();
                    self.note_delivery(&plan, &phase, Some(received)).await?;
                }
            }
            ContributionSource::Decided(decision) => {
                if decision.verdict() != Verdict::Approved {
                    return Ok(());
                }
                let Some(story) = decision.story.filter(|s| s.coverage.is_some()) else { return Ok(()) };
                let withdrawn = story.status() == PublicationStatus::Canceled;
                let (plan, contribution) = self
                    .merge(&story, |c| {
                        if c.approved_versions.contains(&story.version) {
                            return false;
                        }
                        c.approved_versions.push(story.version);
                        c.approved_versions.sort_unstable();
                        c.withdrawn |= withdrawn;
                        if c.approved_versions.last() == Some(&story.version) {
                            c.media = story.media.len() as u32;
                            c.newest = Some(story.clone());
                        }
                        true
                    })
                    .await?;
                self.fan_out(&plan, &contribution).await?;
                if !withdrawn {
                    let phase = story.coverage.as_ref().map(|c| c.phase.clone()).unwrap_or_default();
                    // Delivered when the county sent it, not when moderation got to it.
                    let at = contribution.submitted_at.get(&story.version).copied().or(decision.decided_at);
                    self.note_delivery(&plan, &phase, at).await?;
                }
            }
            ContributionSource::Published(published) => {
                let Some(coverage) = &published.coverage else { return Ok(()) };
                let store = &self.inner.store;
                let (origin, id) = (&published.origin_county, &published.story_id);
                // The plan the story first named (a version processed elsewhere may bind it first).
                let (plan, bound_now) = store.bind_story(origin, id, &coverage.plan_id).await.map_err(Error::from)?;
                let uses = if bound_now { store.uses(origin, id).await.map_err(Error::from)? } else { Vec::new() };
                let contribution = store
                    .merge_contribution(&plan, origin, id, |c| {
                        let mut changed = false;
                        for (county, at) in &uses {
                            if county != origin && !c.used_by.contains_key(county) {
                                c.used_by.insert(county.clone(), bashu_proto::Timestamp { seconds: *at, nanos: 0 });
                                changed = true;
                            }
                        }
                        for county in &published.audience {
                            let highest = c.delivered_versions.entry(county.clone()).or_default();
                            if *highest < published.version {
                                *highest = published.version;
                                changed = true;
                            }
                        }
                        changed
                    })
                    .await
                    .map_err(Error::from)?;
                self.fan_out(&plan, &contribution).await?;
            }
            ContributionSource::RefusedNote(_) => {}
            ContributionSource::Used(used) => {
                if used.county == used.origin_county {
                    return Ok(());
                }
                let store = &self.inner.store;
                let at = used.used_at.unwrap_or_else(bashu_proto::time::now);
                // Recorded first, then the story's plan looked up; a story recorded meanwhile
                // reads this note when it binds (see `merge`): one of the two sees the other.
                store
                    .record_use(&used.origin_county, &used.story_id, &used.county, at.seconds)
                    .await
                    .map_err(Error::from)?;
                if let Some(plan) = store.story_plan(&used.origin_county, &used.story_id).await.map_err(Error::from)? {
                    store
                        .merge_contribution(&plan, &used.origin_county, &used.story_id, |c| {
                            c.used_by.insert(used.county.clone(), at).is_none()
                        })
                        .await
                        .map_err(Error::from)?;
                }
            }
        }
        Ok(())
    }

    /// Merges into the contribution of `story` (in the plan it first named), with what the
    /// story says of its phase, kind and headline and every reuse note recorded so far.
    async fn merge(
        &self,
        story: &Story,
        mut merge: impl FnMut(&mut bashu_proto::coverage::v1::Contribution) -> bool,
    ) -> Result<(String, bashu_proto::coverage::v1::Contribution), Error> {
        let coverage = story.coverage.clone().unwrap_or_default();
        let store = &self.inner.store;
        let (plan, bound_now) = store.bind_story(&story.origin_county, &story.id, &coverage.plan_id).await?;
        // Reuse notes written before the binding: read once, by whoever made it. A note written
        // after it finds the binding and merges itself.
        let uses = if bound_now { store.uses(&story.origin_county, &story.id).await? } else { Vec::new() };
        let contribution = store
            .merge_contribution(&plan, &story.origin_county, &story.id, |c| {
                let mut changed = merge(c);
                // The newest version says which phase and kind it is.
                let newest = c.submitted_at.keys().chain(c.approved_versions.iter()).max().copied().unwrap_or_default();
                if story.version >= newest || c.phase.is_empty() {
                    changed |= c.phase != coverage.phase || c.kind != coverage.kind || c.headline != story.headline;
                    c.phase = coverage.phase.clone();
                    c.kind = coverage.kind;
                    c.headline = story.headline.clone();
                }
                for (county, at) in &uses {
                    if county != &story.origin_county && !c.used_by.contains_key(county) {
                        c.used_by.insert(county.clone(), bashu_proto::Timestamp { seconds: *at, nanos: 0 });
                        changed = true;
                    }
                }
                changed
            })
            .await?;
        Ok((plan, contribution))
    }

    /// Notes in the plan that its phase had an approved contribution sent at `at`: the phase's
    /// first delivery is the earliest such time, whatever order the events come in (a phase this
    /// replica knows to be delivered no later is not read again).
    async fn note_delivery(&self, plan: &str, phase: &str, at: Option<bashu_proto::Timestamp>) -> Result<(), Error> {
        let at = at.unwrap_or_else(bashu_proto::time::now);
        let when = (at.seconds, at.nanos);
        let key = format!("{plan}.{phase}");
        if self.inner.delivered_phases.get(&key).is_some_and(|known| *known <= when) {
            return Ok(());
        }
        let mut earliest = when;
        let result = self
            .inner
            .store
            .change_plan(plan, |p| {
                let Some(phase) = p.phases.iter_mut().find(|f| f.name == phase) else { return Ok(false) };
                if let Some(known) = phase.first_delivered_at.filter(|t| (t.seconds, t.nanos) <= when) {
                    earliest = (known.seconds, known.nanos);
                    return Ok(false);
                }
                earliest = when;
                phase.first_delivered_at = Some(at);
                Ok(true)
            })
            .await;
        match result {
            Ok(_) => {
                self.inner.delivered_phases.insert(key, earliest);
                Ok(())
            }
            // A plan deleted by an operator: the contribution is recorded all the same.
            Err(bashu_coverage_core::Error::NotFound(_)) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}
