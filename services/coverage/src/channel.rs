//! A plan's channel (专题): every story of the plan from its time window, as each following
//! county may see it (its own stories, and those that reached it: a story's sharing policy holds
//! in the channel too), newest version, corrections and withdrawals included. Copies go to
//! `bashu.channel.<county>.<plan>`, read by the county's own consumer `channel-<county>`; the
//! same stories make the channel's ninjs package for websites.

use bashu_proto::{
    coverage::v1::{ChannelItem, Contribution, Plan},
    story::v1::{PublicationStatus, Story},
    time::now,
};

use crate::{Coverage, Error, plans::Caller};

/// The version of `contribution` that `county` may see in the channel, if any: the newest
/// approved version, when the county is its origin or has received that version.
fn visible_to<'a>(contribution: &'a Contribution, county: &str) -> Option<&'a Story> {
    let story = contribution.newest.as_ref()?;
    let received = contribution.delivered_versions.get(county).is_some_and(|v| *v >= story.version);
    (county == contribution.origin_county || received).then_some(story)
}

/// Whether the story was first received within the plan's time window.
fn in_window(plan: &Plan, contribution: &Contribution) -> bool {
    let first =
        contribution.submitted_at.iter().min_by_key(|(version, _)| **version).map(|(_, t)| (t.seconds, t.nanos));
    let bound = |t: &Option<bashu_proto::Timestamp>| t.map(|t| (t.seconds, t.nanos));
    match first {
        Some(first) => {
            bound(&plan.window_start).is_none_or(|start| first >= start)
                && bound(&plan.window_end).is_none_or(|end| first <= end)
        }
        None => false,
    }
}

impl Coverage {
    /// Sends `contribution`'s newest version to every following county that may see it (again:
    /// each copy's message id makes a repeat harmless).
    pub(crate) async fn fan_out(&self, plan_id: &str, contribution: &Contribution) -> Result<(), Error> {
        if contribution.newest.is_none() {
            return Ok(());
        }
        let Some(plan) = self.inner.store.plan(plan_id).await?.map(|p| p.value) else { return Ok(()) };
        for county in &plan.channel_subscribers {
            self.send_to(&plan, contribution, county).await?;
        }
        Ok(())
    }

    async fn send_to(&self, plan: &Plan, contribution: &Contribution, county: &str) -> Result<(), Error> {
        let Some(story) = visible_to(contribution, county).filter(|_| in_window(plan, contribution)) else {
            return Ok(());
        };
        let item = ChannelItem {
            plan_id: plan.id.clone(),
            county: county.to_owned(),
            story: Some(story.clone()),
            delivered_at: Some(now()),
        };
        self.inner.bus.publish(&item).await?;
        Ok(())
    }

    /// What a county that has just followed the channel missed: everything so far.
    pub(crate) async fn catch_up(&self, plan: &Plan, county: &str) -> Result<(), Error> {
        self.inner.bus.coverage().provision_channel_consumer(county).await?;
        for contribution in self.inner.store.contributions(&plan.id).await? {
            self.send_to(plan, &contribution, county).await?;
        }
        Ok(())
    }

    /// The channel as one ninjs package for the caller's county (staff: every story), withdrawn
    /// stories left out, in the order they were received.
    pub(crate) async fn channel_package(&self, caller: &Caller, id: &str) -> Result<serde_json::Value, Error> {
        let view = self.view(caller, id).await?;
        let plan = view.plan.unwrap_or_default();
        let mut contributions = self.inner.store.contributions(id).await?;
        contributions.sort_by_key(|c| c.submitted_at.values().map(|t| (t.seconds, t.nanos)).min());
        let county = match caller {
            Caller::County(county) => Some(county.as_str()),
            _ => None,
        };
        let stories: Vec<Story> = contributions
            .iter()
            .filter(|c| in_window(&plan, c))
            .filter_map(|c| match county {
                Some(county) => visible_to(c, county),
                None => c.newest.as_ref(),
            })
            .filter(|story| story.status() != PublicationStatus::Canceled)
            .cloned()
            .collect();
        Ok(bashu_ninjs::package_to_ninjs(
            &format!("urn:bashu:coverage:{id}"),
            plan.sequence,
            &plan.topic,
            &plan.description,
            &stories,
            county.unwrap_or_default(),
            now(),
        ))
    }
}
