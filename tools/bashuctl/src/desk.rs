//! What duty officers, reviewers and county integrators try out: alerts (board, status, issue,
//! validate, acknowledge), the review queue, and submitting a story.

use std::path::PathBuf;

use base64::Engine as _;
use bashu_proto::{
    admin::v1::{ListAlertChainsRequest, alert_board_service_client::AlertBoardServiceClient},
    alert::v1::{
        AcknowledgeAlertRequest, AlertChain, GetAlertStatusRequest, SignedCap, ValidateAlertRequest,
        alert_service_client::AlertServiceClient,
    },
    ingest::v1::{SubmitStoryRequest, ingest_service_client::IngestServiceClient},
    moderation::v1::{ListQueueRequest, ReviewItem, ReviewRequest, review_service_client::ReviewServiceClient},
    story::v1::Story,
};
use clap::Subcommand;

use crate::{
    client::{Failure, StaffChannel, exit},
    output::say,
    output::{Out, count, print_table, when},
};

/// `bashuctl alert …`
#[derive(Subcommand)]
pub(crate) enum AlertCommand {
    /// Every alert chain with its counts per county state.
    Board {
        /// Only chains neither cancelled nor expired.
        #[arg(long)]
        active: bool,
    },
    /// Every county's state for the chain of an alert.
    Status {
        /// The alert's key, as `bashuctl alert board` or the issue answer shows it.
        alert_key: String,
        /// Only counties that have not acknowledged.
        #[arg(long)]
        waiting: bool,
    },
    /// Signs a CAP 1.2 file as a desk and issues it.
    Issue {
        /// The CAP 1.2 XML file.
        file: PathBuf,
        /// The desk issuing it (its sender and areas are checked).
        #[arg(long)]
        desk: String,
        /// The desk's secret key file (as `bashuctl token issue-desk-key --out` writes it).
        #[arg(long)]
        key_file: PathBuf,
    },
    /// Checks a CAP 1.2 file without sending anything; lists every problem.
    Validate {
        /// The CAP 1.2 XML file.
        file: PathBuf,
    },
    /// Confirms an alert for a county (as the county's duty person would).
    Ack {
        /// The alert's key.
        alert_key: String,
        /// The county it is confirmed for.
        #[arg(long)]
        county: String,
        /// Who confirmed it.
        #[arg(long)]
        by: String,
        /// What was done or said, e.g. "called the duty phone".
        #[arg(long, default_value = "")]
        note: String,
    },
}

/// `bashuctl review …`
#[derive(Subcommand)]
pub(crate) enum ReviewCommand {
    /// Held stories waiting for review.
    Queue {
        /// Only stories waiting for this level.
        #[arg(long, default_value_t = 0)]
        level: u32,
    },
    /// Claims a story (`<origin>.<id>.<version>`) before approving or rejecting it.
    Claim {
        /// `<origin>.<id>.<version>`, as the queue shows it.
        key: String,
    },
    /// Approves at the next level.
    Approve {
        /// `<origin>.<id>.<version>`, as the queue shows it.
        key: String,
    },
    /// Rejects, with a reason the origin county receives.
    Reject {
        /// `<origin>.<id>.<version>`, as the queue shows it.
        key: String,
        /// Why, in words the origin's editors will read.
        #[arg(long)]
        reason: String,
    },
}

/// `bashuctl story …`
#[derive(Subcommand)]
pub(crate) enum StoryCommand {
    /// Submits a canonical story (JSON, as docs/county-integration.md) with a county token.
    Submit {
        /// The story as canonical JSON.
        file: PathBuf,
        /// The county's token (not a staff token). A flag is seen by everyone on the machine
        /// (`ps`) and kept in shell history: prefer BASHUCTL_COUNTY_TOKEN or --county-token-file.
        #[arg(
            long,
            env = "BASHUCTL_COUNTY_TOKEN",
            hide_env_values = true,
            required_unless_present = "county_token_file"
        )]
        county_token: Option<String>,
        /// A file holding the county's token (as `bashuctl token issue-county --out` writes it).
        /// It wins over a token from the environment.
        #[arg(long, env = "BASHUCTL_COUNTY_TOKEN_FILE")]
        county_token_file: Option<PathBuf>,
    },
}

fn read(file: &PathBuf) -> Result<Vec<u8>, Failure> {
    std::fs::read(file).map_err(|e| Failure::usage(format!("{}: {e}", file.display())))
}

fn state_name(state: i32) -> String {
    bashu_proto::alert::v1::CountyAlertState::try_from(state)
        .map(|s| s.short_name())
        .unwrap_or_else(|_| state.to_string())
}

fn chain_table(chain: &AlertChain, waiting: bool) {
    let latest = chain.latest.clone().unwrap_or_default();
    say!(
        "chain {} by desk {} ({}), issued {}",
        chain.chain_key,
        chain.desk_id,
        latest.identifier,
        when(&chain.issued_at)
    );
    let rows = chain
        .counties
        .iter()
        .filter(|c| !waiting || c.acknowledged_at.is_none())
        .map(|c| {
            vec![
                c.county.clone(),
                state_name(c.state),
                when(&c.received_at),
                when(&c.acknowledged_at),
                c.acknowledged_by.clone(),
                if c.acknowledged_at.is_some() && c.recorded_by.is_empty() {
                    "the county".into()
                } else {
                    c.recorded_by.clone()
                },
                c.escalation_step.to_string(),
            ]
        })
        .collect();
    print_table(&["county", "state", "received", "acknowledged", "by", "recorded by", "escalation"], rows);
}

/// Runs `bashuctl alert …`.
impl AlertCommand {
    /// Whether the alerts service answers it (issue, validate, acknowledge: the desk's side)
    /// rather than the admin API (the board, a chain's status).
    pub(crate) fn is_the_desks(&self) -> bool {
        matches!(self, Self::Issue { .. } | Self::Validate { .. } | Self::Ack { .. })
    }
}

pub(crate) async fn alert(channel: StaffChannel, out: Out, command: AlertCommand) -> Result<(), Failure> {
    match command {
        AlertCommand::Board { active } => {
            let answer = AlertBoardServiceClient::new(channel)
                .list_alert_chains(ListAlertChainsRequest { active_only: active })
                .await?
                .into_inner();
            let rows = answer
                .chains
                .iter()
                .map(|c| {
                    let count = |state: &str| c.counts.get(state).copied().unwrap_or(0).to_string();
                    vec![
                        c.latest_alert_key.clone(),
                        c.identifier.clone(),
                        c.event.clone(),
                        c.status().as_str_name().trim_start_matches("STATUS_").to_lowercase(),
                        when(&c.issued_at),
                        count("COUNTY_ALERT_STATE_SENT"),
                        count("COUNTY_ALERT_STATE_RECEIVED"),
                        count("COUNTY_ALERT_STATE_ACKNOWLEDGED"),
                        count("COUNTY_ALERT_STATE_ESCALATED"),
                    ]
                })
                .collect();
            let header =
                ["alert key", "identifier", "event", "status", "issued", "sent", "received", "acked", "escalated"];
            out.show(&answer, &header, rows)
        }
        AlertCommand::Status { alert_key, waiting } => {
            let chain = AlertBoardServiceClient::new(channel)
                .get_alert_status(GetAlertStatusRequest { alert_key })
                .await?
                .into_inner();
            if out.json {
                return out.print_json(&chain);
            }
            chain_table(&chain, waiting);
            let open = chain.counties.iter().filter(|c| c.acknowledged_at.is_none()).count();
            say!(
                "{} of {} acknowledged",
                chain.counties.len() - open,
                count(chain.counties.len() as u64, "county", "counties")
            );
            Ok(())
        }
        AlertCommand::Issue { file, desk, key_file } => {
            let cap_xml = read(&file)?;
            let key_text =
                String::from_utf8(read(&key_file)?).map_err(|_| Failure::usage("the key file is not text"))?;
            let secret: [u8; 32] = base64::engine::general_purpose::STANDARD
                .decode(key_text.trim())
                .ok()
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| Failure::usage("the key file must hold a 32-byte ed25519 secret key in base64"))?;
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            let signature = bashu_alerts_core::signature::sign(&secret, &desk, timestamp, &cap_xml).to_vec();
            let accepted = AlertServiceClient::new(channel)
                .issue_alert(SignedCap { cap_xml, desk_id: desk, timestamp, signature })
                .await?
                .into_inner();
            let text = format!(
                "alert {} accepted{}: key {}, {}",
                accepted.identifier,
                if accepted.duplicate { " (again: nothing new sent)" } else { "" },
                accepted.alert_key,
                count(accepted.counties.len() as u64, "county", "counties")
            );
            out.say(&accepted, text)
        }
        AlertCommand::Validate { file } => {
            let answer = AlertServiceClient::new(channel)
                .validate_alert(ValidateAlertRequest { cap_xml: read(&file)? })
                .await?
                .into_inner();
            if out.json {
                out.print_json(&answer)?;
            } else if answer.valid {
                say!("valid CAP 1.2; it would reach {}", count(answer.counties.len() as u64, "county", "counties"));
            } else {
                print_table(
                    &["where", "problem"],
                    answer.problems.iter().map(|p| vec![p.path.clone(), p.reason.clone()]).collect(),
                );
            }
            if answer.valid { Ok(()) } else { Err(Failure::new(exit::REFUSED, "the document is not valid CAP 1.2")) }
        }
        AlertCommand::Ack { alert_key, county, by, note } => {
            let request = AcknowledgeAlertRequest {
                alert_key: alert_key.clone(),
                county: county.clone(),
                acknowledged_by: by,
                note,
            };
            let answer = AlertServiceClient::new(channel).acknowledge_alert(request).await?.into_inner();
            out.say(&answer, format!("{county} acknowledged {alert_key}"))
        }
    }
}

fn item_row(item: &ReviewItem) -> Vec<String> {
    let story = item.story.clone().unwrap_or_default();
    let claim = item.claim.as_ref().map(|c| c.reviewer.clone()).unwrap_or_default();
    vec![
        item.key.clone(),
        story.headline,
        format!("{}/{}", item.approvals.len(), item.levels_required),
        claim,
        when(&item.held_at),
        item.reason.clone(),
    ]
}

/// Runs `bashuctl review …`.
pub(crate) async fn review(channel: StaffChannel, out: Out, command: ReviewCommand) -> Result<(), Failure> {
    let mut client = ReviewServiceClient::new(channel);
    let header = ["key", "headline", "approvals", "claimed by", "held", "reason"];
    let item = match command {
        ReviewCommand::Queue { level } => {
            let answer = client.list_queue(ListQueueRequest { level, ..Default::default() }).await?.into_inner();
            return out.show(&answer, &header, answer.items.iter().map(item_row).collect());
        }
        ReviewCommand::Claim { key } => client.claim_story(ReviewRequest { key, reason: String::new() }).await?,
        ReviewCommand::Approve { key } => client.approve_story(ReviewRequest { key, reason: String::new() }).await?,
        ReviewCommand::Reject { key, reason } => client.reject_story(ReviewRequest { key, reason }).await?,
    }
    .into_inner();
    out.show(&item, &header, vec![item_row(&item)])
}

/// Runs `bashuctl story …`.
pub(crate) async fn story(channel: tonic::transport::Channel, out: Out, command: StoryCommand) -> Result<(), Failure> {
    let StoryCommand::Submit { file, county_token, county_token_file } = command;
    let county_token = match (county_token_file, county_token) {
        (Some(path), _) => String::from_utf8(read(&path)?)
            .map_err(|_| Failure::usage(format!("{}: not a token", path.display())))?
            .trim()
            .to_owned(),
        (None, Some(token)) => token,
        (None, None) => return Err(Failure::usage("give --county-token-file or BASHUCTL_COUNTY_TOKEN")),
    };
    let text = read(&file)?;
    let story: Story = serde_json::from_slice(&text)
        .map_err(|e| Failure::new(exit::REFUSED, format!("{}: not a canonical story: {e}", file.display())))?;
    let mut request = tonic::Request::new(SubmitStoryRequest { story: Some(story) });
    let bearer = format!("Bearer {county_token}")
        .parse()
        .map_err(|_| Failure::usage("the county token is not a header value"))?;
    request.metadata_mut().insert("authorization", bearer);
    let answer = IngestServiceClient::new(channel).submit_story(request).await?.into_inner();
    let text = format!(
        "story {} version {} {}",
        answer.story_id,
        answer.version,
        if answer.duplicate { "was already accepted" } else { "accepted" }
    );
    out.say(&answer, text)
}
