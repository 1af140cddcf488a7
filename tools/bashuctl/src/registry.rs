//! Counties, alliances, partnerships, desks, subscriptions and webhooks.

use bashu_proto::{
    admin::v1::{
        DeleteAllianceRequest, DeleteDeskRequest, DeletePartnershipRequest, DeleteWebhookRequest, GetCountyRequest,
        GetCountySettingsRequest, ListAlliancesRequest, ListCountiesRequest, ListDesksRequest, ListPartnershipsRequest,
        registry_service_client::RegistryServiceClient,
    },
    registry::v1::{Alliance, County, Desk, Partnership, Subscription, Webhook, WebhookFormat},
};
use clap::Subcommand;

use crate::{
    client::{Failure, StaffChannel},
    output::Out,
};

/// `bashuctl county …`
#[derive(Subcommand)]
pub(crate) enum CountyCommand {
    /// One county; an old code says what it became.
    Get {
        /// GB/T 2260 code.
        code: String,
    },
    /// Every county, or those of a province (2 digits) or prefecture (4 digits).
    List {
        /// A province (2 digits) or prefecture (4 digits) code; nothing: all 220.
        #[arg(long, default_value = "")]
        within: String,
    },
    /// A county's subscription and webhook.
    Settings {
        /// GB/T 2260 code.
        code: String,
    },
}

/// `bashuctl alliance …`
#[derive(Subcommand)]
pub(crate) enum AllianceCommand {
    /// Every alliance.
    List,
    /// Creates or replaces an alliance.
    Put {
        /// The alliance's id, lowercase `[a-z0-9-]`, e.g. fujiang.
        id: String,
        /// Its name, e.g. 涪江流域融媒联盟.
        #[arg(long)]
        name: String,
        /// Member county codes (at least two); repeat for each.
        #[arg(long = "member", required = true)]
        members: Vec<String>,
        /// A note for operators.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Adds counties to an alliance.
    AddMember {
        /// The alliance's id.
        id: String,
        /// County codes to add.
        counties: Vec<String>,
    },
    /// Removes counties from an alliance.
    RemoveMember {
        /// The alliance's id.
        id: String,
        /// County codes to remove.
        counties: Vec<String>,
    },
    /// Deletes an alliance.
    Delete {
        /// The alliance's id.
        id: String,
    },
}

/// `bashuctl partnership …`
#[derive(Subcommand)]
pub(crate) enum PartnershipCommand {
    /// Every bilateral partnership.
    List,
    /// Creates a partnership between two counties.
    Put {
        /// One county's code.
        county_a: String,
        /// The other county's code.
        county_b: String,
        /// A note for operators, e.g. the agreement it rests on.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Ends a partnership.
    Delete {
        /// One county's code.
        county_a: String,
        /// The other county's code.
        county_b: String,
    },
}

/// `bashuctl desk …`
#[derive(Subcommand)]
pub(crate) enum DeskCommand {
    /// Every emergency desk and its areas.
    List,
    /// Creates or changes a desk (its key is kept; a new one: `bashuctl token issue-desk-key`).
    Put {
        /// The desk's id, lowercase `[a-z0-9-]`, e.g. sc-provincial.
        id: String,
        /// Its name, e.g. 四川省应急管理厅值班室.
        #[arg(long)]
        name: String,
        /// `region`, or a province, prefecture or county code; repeat for several.
        #[arg(long = "area", required = true)]
        areas: Vec<String>,
        /// How the desk is reached when an escalation names it (a phone number, a group).
        #[arg(long, default_value = "")]
        contact: String,
        /// A CAP `sender` the desk issues as, e.g. mianyang@example.gov.cn; repeat for several.
        /// Its alerts must name one of them.
        #[arg(long = "sender", required = true)]
        senders: Vec<String>,
        /// A certificate (PEM file) the desk's XML signatures (CAP 1.2 §3.3.2.1) must verify
        /// against; repeat for several. Neither this nor --require-xml-signature: the desk's
        /// certificates and requirement stay as they are.
        #[arg(long = "xml-certificate")]
        xml_certificates: Vec<std::path::PathBuf>,
        /// Every document of the desk must carry a valid XML signature.
        #[arg(long)]
        require_xml_signature: bool,
    },
    /// Removes a desk, its areas and its key: its next alert is refused. Revoke its officers'
    /// staff tokens and its NATS identity as well.
    Delete {
        /// The desk's id.
        id: String,
    },
}

/// `bashuctl subscription …`
#[derive(Subcommand)]
pub(crate) enum SubscriptionCommand {
    /// Sets what a county wants; nothing given means everything.
    Put {
        /// The county's code.
        county: String,
        /// Category names, e.g. CATEGORY_EMERGENCY; repeat for several.
        #[arg(long = "category")]
        categories: Vec<String>,
        /// Tags, any of which will do; repeat for several.
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// 50 (Chongqing) or 51 (Sichuan).
        #[arg(long = "origin-province")]
        origin_provinces: Vec<String>,
    },
}

/// `bashuctl webhook …`
#[derive(Subcommand)]
pub(crate) enum WebhookCommand {
    /// Registers or replaces a county's webhook.
    Put {
        /// The county's code.
        county: String,
        /// Where deliveries are POSTed: https://, on the public internet.
        #[arg(long)]
        url: String,
        /// A file holding the HMAC key (at least 32 bytes).
        #[arg(long)]
        secret_file: std::path::PathBuf,
        /// ninjs or protobuf.
        #[arg(long, default_value = "ninjs")]
        format: String,
    },
    /// Removes a county's webhook.
    Delete {
        /// The county's code.
        county: String,
    },
}

fn county_row(c: &County) -> Vec<String> {
    vec![c.code.clone(), c.name.clone(), c.name_pinyin.clone(), c.prefecture_name.clone(), c.province_name.clone()]
}

fn alliance_rows(alliances: &[Alliance]) -> Vec<Vec<String>> {
    alliances.iter().map(|a| vec![a.id.clone(), a.name.clone(), a.members.join(" "), a.note.clone()]).collect()
}

/// Runs `bashuctl county …`.
pub(crate) async fn county(channel: StaffChannel, out: Out, command: CountyCommand) -> Result<(), Failure> {
    let mut client = RegistryServiceClient::new(channel);
    match command {
        CountyCommand::Get { code } => {
            let answer = client.get_county(GetCountyRequest { code }).await?.into_inner();
            let county = answer.county.clone().unwrap_or_default();
            let mut rows = vec![county_row(&county)];
            if !answer.resolved_from.is_empty() {
                rows[0][0] = format!("{} (was {})", county.code, answer.resolved_from);
            }
            out.show(&answer, &["code", "name", "pinyin", "prefecture", "province"], rows)
        }
        CountyCommand::List { within } => {
            let answer = client.list_counties(ListCountiesRequest { within }).await?.into_inner();
            let rows = answer.counties.iter().map(county_row).collect();
            out.show(&answer, &["code", "name", "pinyin", "prefecture", "province"], rows)
        }
        CountyCommand::Settings { code } => {
            let answer = client.get_county_settings(GetCountySettingsRequest { county: code }).await?.into_inner();
            let subscription = answer.subscription.as_ref().map_or("everything shared with it".into(), |s| {
                format!(
                    "categories [{}] tags [{}] origin provinces [{}]",
                    s.categories.join(" "),
                    s.tags.join(" "),
                    s.origin_provinces.join(" ")
                )
            });
            let webhook = answer.webhook.as_ref().map_or("none".into(), |w| format!("{} ({:?})", w.url, w.format()));
            let defaults = answer.ingest_defaults.as_ref().map_or("none".into(), |d| {
                let sharing =
                    d.sharing.as_ref().map_or("none".into(), |s| serde_json::to_string(s).unwrap_or_default());
                format!("category {} sharing {sharing}", d.category().as_str_name())
            });
            out.say(
                &answer,
                format!(
                    "county {}\nsubscription: {subscription}\nwebhook: {webhook}\ningest defaults: {defaults}",
                    answer.county
                ),
            )
        }
    }
}

/// Runs `bashuctl alliance …`.
pub(crate) async fn alliance(channel: StaffChannel, out: Out, command: AllianceCommand) -> Result<(), Failure> {
    let mut client = RegistryServiceClient::new(channel);
    let header = ["id", "name", "members", "note"];
    let stored = match command {
        AllianceCommand::List => {
            let answer = client.list_alliances(ListAlliancesRequest {}).await?.into_inner();
            return out.show(&answer, &header, alliance_rows(&answer.alliances));
        }
        AllianceCommand::Put { id, name, members, note } => {
            client.put_alliance(Alliance { id, name, members, note }).await?.into_inner()
        }
        AllianceCommand::AddMember { id, counties } | AllianceCommand::RemoveMember { id, counties }
            if counties.is_empty() =>
        {
            return Err(Failure::usage(format!("name at least one county to change in {id}")));
        }
        AllianceCommand::AddMember { id, counties } => {
            let mut alliance = find_alliance(&mut client, &id).await?;
            alliance.members.extend(counties);
            client.put_alliance(alliance).await?.into_inner()
        }
        AllianceCommand::RemoveMember { id, counties } => {
            let mut alliance = find_alliance(&mut client, &id).await?;
            alliance.members.retain(|m| !counties.contains(m));
            client.put_alliance(alliance).await?.into_inner()
        }
        AllianceCommand::Delete { id } => {
            client.delete_alliance(DeleteAllianceRequest { id: id.clone() }).await?;
            return out.say(&serde_json::json!({ "deleted": id }), format!("alliance {id} deleted"));
        }
    };
    out.show(&stored, &header, alliance_rows(std::slice::from_ref(&stored)))
}

/// The DER of the first certificate in a PEM file.
fn certificate_der(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    use base64::Engine as _;
    let text = std::fs::read_to_string(path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    let body: String = text
        .lines()
        .skip_while(|line| line.trim() != "-----BEGIN CERTIFICATE-----")
        .skip(1)
        .take_while(|line| line.trim() != "-----END CERTIFICATE-----")
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()
        .filter(|der| !der.is_empty())
        .ok_or_else(|| Failure::usage(format!("{}: no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())))
}

async fn find_alliance(client: &mut RegistryServiceClient<StaffChannel>, id: &str) -> Result<Alliance, Failure> {
    let alliances = client.list_alliances(ListAlliancesRequest {}).await?.into_inner().alliances;
    alliances
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| Failure::new(crate::client::exit::NOT_FOUND, format!("no alliance {id:?}")))
}

/// Runs `bashuctl partnership …`.
pub(crate) async fn partnership(channel: StaffChannel, out: Out, command: PartnershipCommand) -> Result<(), Failure> {
    let mut client = RegistryServiceClient::new(channel);
    let header = ["county a", "county b", "note"];
    let row = |p: &Partnership| vec![p.county_a.clone(), p.county_b.clone(), p.note.clone()];
    match command {
        PartnershipCommand::List => {
            let answer = client.list_partnerships(ListPartnershipsRequest {}).await?.into_inner();
            out.show(&answer, &header, answer.partnerships.iter().map(row).collect())
        }
        PartnershipCommand::Put { county_a, county_b, note } => {
            let stored = client.put_partnership(Partnership { county_a, county_b, note }).await?.into_inner();
            out.show(&stored, &header, vec![row(&stored)])
        }
        PartnershipCommand::Delete { county_a, county_b } => {
            client
                .delete_partnership(DeletePartnershipRequest { county_a: county_a.clone(), county_b: county_b.clone() })
                .await?;
            out.say(
                &serde_json::json!({ "deleted": [county_a, county_b] }),
                format!("partnership {county_a}-{county_b} ended"),
            )
        }
    }
}

/// Runs `bashuctl desk …`.
pub(crate) async fn desk(channel: StaffChannel, out: Out, command: DeskCommand) -> Result<(), Failure> {
    let mut client = RegistryServiceClient::new(channel);
    let header = ["id", "name", "areas", "senders", "key", "XML signature", "contact"];
    let row = |d: &Desk| {
        let key = if d.public_key.is_empty() { "none (cannot sign)" } else { "set" };
        let certificates = d.xml_signature_certificates.len();
        let xml = match (d.require_xml_signature, certificates) {
            (true, n) => format!("required ({n} certificate{})", if n == 1 { "" } else { "s" }),
            (false, 0) => "checked if present".into(),
            (false, n) => format!("checked if present ({n} certificate{})", if n == 1 { "" } else { "s" }),
        };
        vec![d.id.clone(), d.name.clone(), d.areas.join(" "), d.senders.join(" "), key.into(), xml, d.contact.clone()]
    };
    match command {
        DeskCommand::List => {
            let answer = client.list_desks(ListDesksRequest {}).await?.into_inner();
            out.show(&answer, &header, answer.desks.iter().map(row).collect())
        }
        DeskCommand::Put { id, name, areas, contact, senders, xml_certificates, require_xml_signature } => {
            let mut desk = Desk { id, name, areas, contact, senders, require_xml_signature, ..Default::default() };
            for path in &xml_certificates {
                desk.xml_signature_certificates.push(certificate_der(path)?);
            }
            if xml_certificates.is_empty() && !require_xml_signature {
                let desks = client.list_desks(ListDesksRequest {}).await?.into_inner().desks;
                if let Some(existing) = desks.into_iter().find(|d| d.id == desk.id) {
                    desk.xml_signature_certificates = existing.xml_signature_certificates;
                    desk.require_xml_signature = existing.require_xml_signature;
                }
            }
            let stored = client.put_desk(desk).await?.into_inner();
            out.show(&stored, &header, vec![row(&stored)])
        }
        DeskCommand::Delete { id } => {
            let answer = client.delete_desk(DeleteDeskRequest { id: id.clone() }).await?.into_inner();
            out.say(&answer, format!("desk {id} deleted"))
        }
    }
}

/// Runs `bashuctl subscription …`.
pub(crate) async fn subscription(channel: StaffChannel, out: Out, command: SubscriptionCommand) -> Result<(), Failure> {
    let SubscriptionCommand::Put { county, categories, tags, origin_provinces } = command;
    let stored = RegistryServiceClient::new(channel)
        .put_subscription(Subscription { county, categories, tags, origin_provinces })
        .await?
        .into_inner();
    out.say(&stored, format!("subscription of {} set", stored.county))
}

/// Runs `bashuctl webhook …`.
pub(crate) async fn webhook(channel: StaffChannel, out: Out, command: WebhookCommand) -> Result<(), Failure> {
    let mut client = RegistryServiceClient::new(channel);
    match command {
        WebhookCommand::Put { county, url, secret_file, format } => {
            let secret = std::fs::read(&secret_file)
                .map_err(|e| Failure::usage(format!("secret file {}: {e}", secret_file.display())))?;
            let format = match format.as_str() {
                "ninjs" => WebhookFormat::Ninjs,
                "protobuf" => WebhookFormat::Protobuf,
                other => return Err(Failure::usage(format!("--format {other}: ninjs or protobuf"))),
            };
            let stored = client
                .put_webhook(Webhook { county, url, secret, format: format as i32, registered_at: None })
                .await?
                .into_inner();
            out.say(&stored, format!("webhook of {} → {}", stored.county, stored.url))
        }
        WebhookCommand::Delete { county } => {
            client.delete_webhook(DeleteWebhookRequest { county: county.clone() }).await?;
            out.say(&serde_json::json!({ "deleted": county }), format!("webhook of {county} removed"))
        }
    }
}
