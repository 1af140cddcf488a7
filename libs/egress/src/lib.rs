//! Outbound HTTP to URLs that counties give Bashu (RSS/Atom feeds, webhooks): only public
//! addresses are reached, checked for the URL itself, for every redirect hop, and for the address
//! the connection is actually made to (the resolver drops every non-public answer, so a name that
//! changes its answer between a check and the fetch, DNS rebinding, gets nowhere).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use ipnet::IpNet;
use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
    redirect,
};
use serde::Deserialize;

/// Redirects followed at most, for a URL that follows them at all.
pub const MAX_REDIRECTS: usize = 5;

/// Which addresses Bashu may reach on a county's behalf.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Reach loopback, private and link-local addresses too. For a laptop only: with it, a feed
    /// or a webhook can make Bashu read or post to anything inside the network.
    pub allow_private: bool,
    /// Networks reachable although they are not public (CIDR, e.g. `10.20.0.0/16` for a county
    /// CMS on a government intranet, or `127.0.0.2/32` in tests).
    #[schemars(with = "Vec<String>")]
    pub allowed_networks: Vec<IpNet>,
    /// Accept `http://` webhooks (with TLS nowhere on the way). Off: webhooks must be `https://`.
    pub allow_plain_http_webhooks: bool,
}

/// Why a URL or an address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not an absolute http(s) URL with a host.
    #[error("not an http(s) URL with a host: {0}")]
    NotHttp(String),
    /// `http://` where `https://` is required.
    #[error("must be https://")]
    NotHttps,
    /// The address is loopback, private, link-local or otherwise not on the public internet.
    #[error("{host} is not a public address ({address}); not reached")]
    NotPublic {
        /// The host as the URL names it.
        host: String,
        /// The address it is or resolves to.
        address: IpAddr,
    },
    /// Every address the name resolves to is refused, or it resolves to none.
    #[error("{0} resolves to no public address; not reached")]
    NoPublicAddress(String),
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Config {
    /// True when Bashu may connect to `address`.
    pub fn permits(&self, address: IpAddr) -> bool {
        self.allow_private || is_public(address) || self.allowed_networks.iter().any(|n| n.contains(&address))
    }

    /// Checks a URL before it is fetched or stored: an http(s) URL whose host, if it is an
    /// address, is permitted. (A name is checked when it is resolved, by [`Config::client`].)
    pub fn check_url(&self, url: &str) -> Result<Url> {
        let parsed = Url::parse(url).map_err(|e| Error::NotHttp(e.to_string()))?;
        self.check_parsed(&parsed)?;
        Ok(parsed)
    }

    /// As [`Config::check_url`], and `https://` unless plain HTTP webhooks are allowed.
    pub fn check_webhook_url(&self, url: &str) -> Result<Url> {
        let parsed = self.check_url(url)?;
        if parsed.scheme() != "https" && !self.allow_plain_http_webhooks {
            return Err(Error::NotHttps);
        }
        Ok(parsed)
    }

    fn check_parsed(&self, url: &Url) -> Result<()> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::NotHttp(format!("scheme {}", url.scheme())));
        }
        let address = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => return Err(Error::NotHttp("no host".into())),
        };
        if self.permits(address) {
            Ok(())
        } else {
            Err(Error::NotPublic { host: url.host_str().unwrap_or_default().to_owned(), address })
        }
    }

    /// An HTTP client that reaches only permitted addresses: names resolve to permitted addresses
    /// only, redirects (at most `follow_redirects` of them, none for 0) are checked hop by hop,
    /// and no proxy from the environment is used (a proxy would resolve names where this policy
    /// cannot see). Callers still check the first URL with [`Config::check_url`], since a URL
    /// naming an address is connected to without resolving.
    pub fn client(
        &self,
        timeout: Duration,
        user_agent: &str,
        follow_redirects: usize,
    ) -> reqwest::Result<reqwest::Client> {
        // rustls needs one process-wide crypto provider; ring is the one async-nats already uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let policy = self.clone();
        let redirects = redirect::Policy::custom(move |attempt| {
            let next = redact(attempt.url());
            if follow_redirects == 0 {
                return attempt.error(format!("redirect to {next} not followed"));
            }
            if attempt.previous().len() > follow_redirects {
                return attempt.error(format!("more than {follow_redirects} redirects"));
            }
            match policy.check_parsed(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(error) => attempt.error(format!("redirect to {next} refused: {error}")),
            }
        });
        reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(user_agent)
            .no_proxy()
            .redirect(redirects)
            .dns_resolver(Arc::new(PublicResolver { policy: self.clone() }))
            .build()
    }
}

/// A URL without its query and fragment, for messages (they may carry tokens).
pub fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// The system resolver, with every answer the policy refuses dropped.
struct PublicResolver {
    policy: Config,
}

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // The port is replaced by the URL's own; the resolver answers addresses.
            let answers: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = answers.into_iter().filter(|a| policy.permits(a.ip())).collect();
            if permitted.is_empty() {
                return Err(Box::new(Error::NoPublicAddress(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// True for an address on the public internet: not loopback, private, shared (CGNAT),
/// link-local, unspecified, broadcast, multicast, documentation, benchmarking or reserved, and
/// for IPv6 not unique-local, link-local, or an IPv4 address in disguise (mapped, compatible,
/// NAT64, 6to4) that is itself not public.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    // ::a.b.c.d (deprecated IPv4-compatible), 64:ff9b::/96 (NAT64), 2002::/16 (6to4).
    if segments[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified() {
        return is_public_v4(embedded_v4(segments[6], segments[7]));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4(segments[6], segments[7]));
    }
    if segments[0] == 0x2002 {
        return is_public_v4(embedded_v4(segments[1], segments[2]));
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] == 0x2001 && segments[1] == 0x0db8))
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn inside_addresses_are_not_public() {
        for inside in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "198.18.0.1",
            "240.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public(ip(inside)), "{inside} counted as public");
        }
        for outside in ["1.1.1.1", "202.96.128.86", "2400:3200::1", "::ffff:8.8.8.8", "64:ff9b::808:808"] {
            assert!(is_public(ip(outside)), "{outside} counted as inside");
        }
    }

    #[test]
    fn urls_naming_inside_addresses_are_refused_unless_allowed() {
        let strict = Config::default();
        for url in [
            "http://127.0.0.1:8080/x",
            "http://[::ffff:127.0.0.1]/",
            "http://[::1]/",
            "http://0x7f.1/",
            "http://2130706433/",
        ] {
            assert!(matches!(strict.check_url(url), Err(Error::NotPublic { .. })), "{url} not refused");
        }
        assert!(strict.check_url("file:///etc/passwd").is_err());
        assert!(strict.check_url("https://news.example.cn/rss").is_ok());
        let lab = Config { allowed_networks: vec!["127.0.0.2/32".parse().unwrap()], ..Default::default() };
        assert!(lab.check_url("http://127.0.0.2:9/").is_ok());
        assert!(lab.check_url("http://127.0.0.1:9/").is_err());
    }

    #[test]
    fn webhooks_need_https_unless_allowed() {
        let strict = Config::default();
        assert_eq!(strict.check_webhook_url("http://cms.example.cn/hook").unwrap_err(), Error::NotHttps);
        assert!(strict.check_webhook_url("https://cms.example.cn/hook").is_ok());
        let dev = Config { allow_plain_http_webhooks: true, ..Default::default() };
        assert!(dev.check_webhook_url("http://cms.example.cn/hook").is_ok());
    }
}
