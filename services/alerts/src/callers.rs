//! Who may acknowledge an alert for a county and read an alert's state: the county itself, with
//! its token; or staff on its behalf (an operator, or a desk officer for the counties of their
//! desk's areas, recording a confirmation taken by telephone), with a staff token. Viewers and
//! reviewers may read, not acknowledge.

use bashu_proto::{alert::v1::AlertChain, registry::v1::StaffRole};
use bashu_registry::{Caller, CountyTokens, StaffTokens, bearer};

use crate::Error;

/// The two kinds of token the alert front ends accept.
#[derive(Clone)]
pub struct Callers {
    tokens: CountyTokens,
    staff: StaffTokens,
}

/// Who is calling.
pub(crate) enum Acting {
    /// A county centre, by its token.
    County(String),
    /// A staff member, by theirs.
    Staff(Caller),
}

impl Callers {
    /// Checks county tokens against `tokens` and staff tokens against `staff`.
    pub fn new(tokens: CountyTokens, staff: StaffTokens) -> Self {
        Self { tokens, staff }
    }

    /// The caller of an `authorization: Bearer …` value; 401 for none or an unknown one.
    pub(crate) async fn identify(&self, authorization: Option<&str>) -> Result<Acting, Error> {
        let refused = || Error::Unauthenticated("a county token or a staff token is needed".into());
        let token = bearer(authorization).ok_or_else(refused)?;
        let unavailable = |e: bashu_registry::Error| Error::Store(Box::new(e));
        if let Ok(county) = self.tokens.authenticate(token).await.map_err(unavailable)? {
            return Ok(Acting::County(county));
        }
        match self.staff.authenticate(token).await.map_err(unavailable)? {
            Ok(caller) => Ok(Acting::Staff(caller)),
            Err(_) => Err(refused()),
        }
    }
}

impl Acting {
    /// A county acknowledges only for itself; an operator for any county; a desk officer for the
    /// counties within their desk's areas (`desk_areas` looks those up).
    pub(crate) fn may_acknowledge(&self, county: &str, desk_areas: impl Fn(&str) -> Vec<String>) -> Result<(), Error> {
        match self {
            Acting::County(own) if own == county => Ok(()),
            Acting::County(own) => Err(Error::Forbidden(format!("county {own} may acknowledge only for itself"))),
            Acting::Staff(caller) if caller.role == StaffRole::Operator => Ok(()),
            Acting::Staff(caller) if caller.role == StaffRole::Desk => {
                let areas = desk_areas(&caller.desk_id);
                let target = std::collections::BTreeSet::from([county.to_owned()]);
                if crate::targeting::outside_authority(&areas, &target).is_empty() {
                    Ok(())
                } else {
                    Err(Error::Forbidden(format!("{county} is outside the areas of desk {}", caller.desk_id)))
                }
            }
            Acting::Staff(caller) => Err(Error::Forbidden(format!(
                "{} may not acknowledge for a county (desk officers and operators may)",
                caller.name
            ))),
        }
    }

    /// Who records an acknowledgement made through `door`.
    pub(crate) fn recorder<'a>(&'a self, door: &'a str) -> crate::Recorder<'a> {
        match self {
            Acting::County(_) => crate::Recorder::County,
            Acting::Staff(caller) => crate::Recorder::Staff { caller, door },
        }
    }

    /// A county reads only alerts sent to it; any staff member reads every alert.
    pub(crate) fn may_read(&self, chain: &AlertChain) -> Result<(), Error> {
        match self {
            Acting::County(own) if !chain.counties.iter().any(|c| &c.county == own) => {
                Err(Error::NotFound("no such alert for this county".into()))
            }
            _ => Ok(()),
        }
    }
}
