//! Who is calling, and whether they may: the county behind a bearer token, and each county's
//! share of ingest (a token bucket per county, so one busy CMS cannot starve the others).

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use bashu_registry::{CountyTokens, Refusal};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use crate::{Error, Result};

/// Checks tokens and per-county rates.
#[derive(Clone)]
pub(crate) struct Access {
    tokens: CountyTokens,
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
}

impl Access {
    pub(crate) fn new(tokens: CountyTokens, per_minute: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        Self { tokens, limiter: Arc::new(RateLimiter::keyed(quota)) }
    }

    /// The county of an `authorization: Bearer …` value (None: no header).
    pub(crate) async fn county(&self, authorization: Option<&str>) -> Result<String> {
        let token = bashu_registry::bearer(authorization)
            .ok_or(Error::Unauthenticated("send the county's token as `authorization: Bearer <token>`"))?;
        match self.tokens.authenticate(token).await.map_err(Error::store)? {
            Ok(county) => Ok(county),
            Err(Refusal::Malformed) => Err(Error::Unauthenticated("not a Bashu county token")),
            Err(Refusal::Unknown) => Err(Error::Unauthenticated("unknown or revoked token")),
        }
    }

    /// Takes `cost` submissions from the county's allowance, or says when to come back.
    pub(crate) fn admit(&self, county: &str, cost: u32) -> Result<()> {
        let cost = NonZeroU32::new(cost.max(1)).expect("at least one");
        match self.limiter.check_key_n(&county.to_owned(), cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                Err(Error::RateLimited { retry_after: wait.max(Duration::from_secs(1)) })
            }
            // More than the burst in one request: it can never pass.
            Err(_) => Err(Error::TooManyItems),
        }
    }
}
