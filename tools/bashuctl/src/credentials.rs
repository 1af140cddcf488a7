//! County tokens, staff tokens and desk keys. A new secret is printed once, or written to a
//! file with `--out` (mode 0600) so it never reaches the terminal's scrollback.

use std::path::PathBuf;

use bashu_proto::{
    admin::v1::{
        IssueCountyTokenRequest, IssueDeskKeyRequest, IssueNatsUserRequest, IssueStaffTokenRequest,
        ListCountyTokensRequest, ListDeskKeysRequest, ListNatsUsersRequest, ListStaffTokensRequest,
        RevokeCountyTokenRequest, RevokeDeskKeyRequest, RevokeNatsUserRequest, RevokeStaffTokenRequest,
        credential_service_client::CredentialServiceClient,
    },
    registry::v1::StaffRole,
};
use clap::Subcommand;

use crate::{
    client::{Failure, StaffChannel},
    output::{Out, when},
};

/// `bashuctl token …` and `bashuctl key …`
#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Issues a county token (for ingest and the county APIs).
    IssueCounty {
        /// The county's code.
        county: String,
        /// What the token is for, e.g. "CMS production"; shown in the list.
        #[arg(long, default_value = "")]
        label: String,
        /// Write the token to this file instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// A county's tokens (never their secrets).
    ListCounty {
        /// The county's code.
        county: String,
    },
    /// Revokes a county token.
    RevokeCounty {
        /// The county's code.
        county: String,
        /// The token's id (from `bashuctl token list-county`).
        id: String,
    },
    /// Issues a staff token for the admin API.
    IssueStaff {
        /// Who will hold it.
        #[arg(long)]
        name: String,
        /// viewer, desk, reviewer or operator.
        #[arg(long)]
        role: String,
        /// A reviewer's levels (1 初审, 2 复审, 3 终审); repeat for several.
        #[arg(long = "level")]
        levels: Vec<u32>,
        /// A desk officer's desk.
        #[arg(long, default_value = "")]
        desk: String,
        /// Write the token to this file instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Every staff token (never their secrets).
    ListStaff,
    /// Revokes a staff token.
    RevokeStaff {
        /// The token's id (from `bashuctl token list-staff`).
        id: String,
    },
    /// Gives a desk a new signing key pair; prints (or writes) the secret key.
    IssueDeskKey {
        /// The desk's id.
        desk: String,
        /// Write the secret key to this file instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Every desk's public key.
    ListDeskKeys,
    /// Removes a desk's key: its next signed alert is refused.
    RevokeDeskKey {
        /// The desk's id.
        desk: String,
    },
    /// Issues a NATS identity (an nkey seed) for a county or a desk; prints (or writes) the seed
    /// and the inbox prefix its client must use.
    IssueNats {
        /// The county (GB/T 2260 code).
        #[arg(long, conflicts_with = "desk", required_unless_present = "desk")]
        county: Option<String>,
        /// The desk id.
        #[arg(long)]
        desk: Option<String>,
        /// What the identity is for, e.g. "newsroom receiver"; shown in the list.
        #[arg(long, default_value = "")]
        label: String,
        /// Write the seed to this file (mode 0600) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Every county's and desk's NATS identity.
    ListNats,
    /// Revokes a NATS identity: refused and disconnected within seconds.
    RevokeNats {
        /// The identity's public key, `U…`.
        public_key: String,
    },
}

/// Prints a secret, or writes it to a file only its owner can read.
fn hand_over(secret: &str, out: Option<PathBuf>, what: &str) -> Result<String, Failure> {
    let Some(path) = out else { return Ok(format!("{what} (shown once): {secret}")) };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    std::io::Write::write_all(&mut file, format!("{secret}\n").as_bytes())
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    Ok(format!("{what} written to {}", path.display()))
}

fn role_of(name: &str) -> Result<StaffRole, Failure> {
    match name {
        "viewer" => Ok(StaffRole::Viewer),
        "desk" => Ok(StaffRole::Desk),
        "reviewer" => Ok(StaffRole::Reviewer),
        "operator" => Ok(StaffRole::Operator),
        other => Err(Failure::usage(format!("--role {other}: viewer, desk, reviewer or operator"))),
    }
}

/// Runs `bashuctl token …`.
pub(crate) async fn token(channel: StaffChannel, out: Out, command: TokenCommand) -> Result<(), Failure> {
    let mut client = CredentialServiceClient::new(channel);
    match command {
        TokenCommand::IssueCounty { county, label, out: file } => {
            let issued = client.issue_county_token(IssueCountyTokenRequest { county, label }).await?.into_inner();
            let record = issued.record.clone().unwrap_or_default();
            if out.json && file.is_none() {
                return out.print_json(&issued);
            }
            let text = hand_over(&issued.token, file, &format!("token {} for county {}", record.id, record.county))?;
            out.say(&serde_json::json!({ "record": record }), text)
        }
        TokenCommand::ListCounty { county } => {
            let answer = client.list_county_tokens(ListCountyTokensRequest { county }).await?.into_inner();
            let rows = answer
                .tokens
                .iter()
                .map(|t| vec![t.county.clone(), t.id.clone(), t.label.clone(), when(&t.issued_at)])
                .collect();
            out.show(&answer, &["county", "id", "label", "issued"], rows)
        }
        TokenCommand::RevokeCounty { county, id } => {
            client.revoke_county_token(RevokeCountyTokenRequest { county: county.clone(), id: id.clone() }).await?;
            out.say(&serde_json::json!({ "revoked": id }), format!("token {id} of {county} revoked"))
        }
        TokenCommand::IssueStaff { name, role, levels, desk, out: file } => {
            let request =
                IssueStaffTokenRequest { name, role: role_of(&role)? as i32, review_levels: levels, desk_id: desk };
            let issued = client.issue_staff_token(request).await?.into_inner();
            let record = issued.record.clone().unwrap_or_default();
            if out.json && file.is_none() {
                return out.print_json(&issued);
            }
            let text = hand_over(&issued.token, file, &format!("staff token {} for {}", record.id, record.name))?;
            out.say(&serde_json::json!({ "record": record }), text)
        }
        TokenCommand::ListStaff => {
            let answer = client.list_staff_tokens(ListStaffTokensRequest {}).await?.into_inner();
            let rows = answer
                .tokens
                .iter()
                .map(|t| {
                    let role = t.role().short_name();
                    let scope = match t.role() {
                        StaffRole::Reviewer => format!("levels {:?}", t.review_levels),
                        StaffRole::Desk => format!("desk {}", t.desk_id),
                        _ => String::new(),
                    };
                    vec![t.id.clone(), t.name.clone(), role, scope, when(&t.issued_at)]
                })
                .collect();
            out.show(&answer, &["id", "name", "role", "scope", "issued"], rows)
        }
        TokenCommand::RevokeStaff { id } => {
            client.revoke_staff_token(RevokeStaffTokenRequest { id: id.clone() }).await?;
            out.say(&serde_json::json!({ "revoked": id }), format!("staff token {id} revoked"))
        }
        TokenCommand::IssueDeskKey { desk, out: file } => {
            let issued = client.issue_desk_key(IssueDeskKeyRequest { desk_id: desk }).await?.into_inner();
            if out.json && file.is_none() {
                return out.print_json(&issued);
            }
            let text = hand_over(&issued.secret_key, file, &format!("secret key of desk {}", issued.desk_id))?;
            let public = serde_json::json!({ "deskId": issued.desk_id, "publicKey": issued.public_key });
            out.say(&public, format!("{text}\npublic key: {}", issued.public_key))
        }
        TokenCommand::ListDeskKeys => {
            let answer = client.list_desk_keys(ListDeskKeysRequest {}).await?.into_inner();
            let rows = answer
                .keys
                .iter()
                .map(|k| {
                    let key = if k.public_key.is_empty() { "(revoked)".into() } else { k.public_key.clone() };
                    vec![k.desk_id.clone(), k.areas.join(" "), key]
                })
                .collect();
            out.show(&answer, &["desk", "areas", "public key"], rows)
        }
        TokenCommand::RevokeDeskKey { desk } => {
            client.revoke_desk_key(RevokeDeskKeyRequest { desk_id: desk.clone() }).await?;
            out.say(&serde_json::json!({ "revoked": desk }), format!("key of desk {desk} revoked"))
        }
        TokenCommand::IssueNats { county, desk, label, out: file } => {
            let request =
                IssueNatsUserRequest { county: county.unwrap_or_default(), desk_id: desk.unwrap_or_default(), label };
            let issued = client.issue_nats_user(request).await?.into_inner();
            if out.json && file.is_none() {
                return out.print_json(&issued);
            }
            let record = issued.record.clone().unwrap_or_default();
            let text = hand_over(&issued.seed, file, &format!("NATS seed of {}", record.owner))?;
            let public = serde_json::json!({
                "owner": record.owner, "publicKey": record.public_key, "inboxPrefix": issued.inbox_prefix,
            });
            out.say(
                &public,
                format!(
                    "{text}\npublic key: {}\ninbox prefix: {} (the client must use it)",
                    record.public_key, issued.inbox_prefix
                ),
            )
        }
        TokenCommand::ListNats => {
            let answer = client.list_nats_users(ListNatsUsersRequest {}).await?.into_inner();
            let rows = answer
                .users
                .iter()
                .map(|u| {
                    let kind = u.kind().as_str_name().trim_start_matches("NATS_USER_KIND_").to_lowercase();
                    vec![kind, u.owner.clone(), u.public_key.clone(), when(&u.issued_at), u.label.clone()]
                })
                .collect();
            out.show(&answer, &["kind", "owner", "public key", "issued", "label"], rows)
        }
        TokenCommand::RevokeNats { public_key } => {
            client.revoke_nats_user(RevokeNatsUserRequest { public_key: public_key.clone() }).await?;
            out.say(&serde_json::json!({ "revoked": public_key }), format!("NATS identity {public_key} revoked"))
        }
    }
}
