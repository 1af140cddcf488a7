//! Each event type bound to its subject and idempotency key, so no service formats either.

use bashu_proto::story::v1::{ModerationDecision, Story, StoryDelivery, StoryPublished, StoryReceipt, StorySubmitted};

use crate::{Error, Result, Subjects};

/// Where an event goes and the key that makes re-publishing it harmless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The subject.
    pub subject: String,
    /// The `Nats-Msg-Id`.
    pub msg_id: String,
}

/// A protobuf event that knows its route.
pub trait Event: prost::Message + Default + Send + Sync + 'static {
    /// The protobuf full name, sent in the `Bashu-Type` header.
    const TYPE: &'static str;

    /// The subject and idempotency key of this event.
    fn route(&self, subjects: &Subjects) -> Result<Route>;
}

fn story<'a>(event: &'static str, story: Option<&'a Story>) -> Result<&'a Story> {
    story.ok_or(Error::MissingField { event, field: "story" })
}

fn story_key(origin: &str, id: &str, version: u32) -> String {
    format!("{origin}.{id}.{version}")
}

impl Event for StorySubmitted {
    const TYPE: &'static str = "bashu.story.v1.StorySubmitted";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        let story = story(Self::TYPE, self.story.as_ref())?;
        Ok(Route {
            subject: subjects.story_submitted(&story.origin_county)?,
            msg_id: format!("submitted.{}", story_key(&story.origin_county, &story.id, story.version)),
        })
    }
}

impl Event for ModerationDecision {
    const TYPE: &'static str = "bashu.story.v1.ModerationDecision";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        let story = story(Self::TYPE, self.story.as_ref())?;
        Ok(Route {
            subject: subjects.story_decided(&story.origin_county)?,
            msg_id: format!(
                "decided.{}.{}",
                story_key(&story.origin_county, &story.id, story.version),
                self.verdict().as_str_name()
            ),
        })
    }
}

impl Event for StoryPublished {
    const TYPE: &'static str = "bashu.story.v1.StoryPublished";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        Ok(Route {
            subject: subjects.story_published(&self.origin_county)?,
            msg_id: format!("published.{}", story_key(&self.origin_county, &self.story_id, self.version)),
        })
    }
}

impl Event for StoryDelivery {
    const TYPE: &'static str = "bashu.story.v1.StoryDelivery";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        let story = story(Self::TYPE, self.story.as_ref())?;
        Ok(Route {
            subject: subjects.feed_story(&self.county)?,
            msg_id: format!("feed.{}.{}", self.county, story_key(&story.origin_county, &story.id, story.version)),
        })
    }
}

impl Event for StoryReceipt {
    const TYPE: &'static str = "bashu.story.v1.StoryReceipt";

    fn route(&self, subjects: &Subjects) -> Result<Route> {
        Ok(Route {
            subject: subjects.story_receipt(&self.county)?,
            msg_id: format!("receipt.{}.{}", self.county, story_key(&self.origin_county, &self.story_id, self.version)),
        })
    }
}
