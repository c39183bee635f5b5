//! Which address a connection counts as for per-IP limits and logs.
//!
//! Behind a load balancer or reverse proxy every connection comes from the
//! proxy's address, so one per-IP bucket would throttle all clients
//! together. Proxies listed as trusted (`--trusted-proxies`) are believed
//! about the client they forward for: `X-Forwarded-For` is read from the
//! right (the hop nearest to us) past every trusted address, and the first
//! untrusted one is the client. A connection from anywhere else is its own
//! peer address, whatever headers it sends, so a client cannot pick its
//! own bucket by forging the header.

use std::net::IpAddr;
use std::str::FromStr;

use http::HeaderMap;
use ipnet::IpNet;

/// The networks whose `X-Forwarded-For` is believed; empty by default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR networks, such
    /// as `10.0.0.0/8, 127.0.0.1, ::1`.
    pub fn parse(list: &str) -> Result<Self, String> {
        Self::from_entries(list.split(',').map(str::trim).filter(|s| !s.is_empty()))
    }

    /// Parses each entry: an address, or a network in CIDR notation.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in entries {
            let net = match IpNet::from_str(entry) {
                Ok(net) => net,
                Err(_) => match IpAddr::from_str(entry) {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(format!(
                            "trusted proxy {entry:?} is neither an IP address nor a CIDR network (e.g. 10.0.0.0/8)"
                        ))
                    }
                },
            };
            nets.push(net);
        }
        Ok(TrustedProxies { nets })
    }

    /// True when no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client a connection from `peer` with `headers` stands for.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        // Several header lines form one list, in order.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                // garbage from beyond the trusted hops: stop at what we know
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port
/// (`1.2.3.4:5678`, `[::1]:5678`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(canonical(ip));
    }
    if let Ok(sock) = std::net::SocketAddr::from_str(hop) {
        return Some(canonical(sock.ip()));
    }
    let bracketed = hop.strip_prefix('[')?.split(']').next()?;
    IpAddr::from_str(bracketed).ok().map(canonical)
}

/// IPv4 clients of a dual-stack listener arrive as `::ffff:a.b.c.d`.
/// The list as `--trusted-proxies` takes it; `none` when empty.
impl std::fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.nets.is_empty() {
            return f.write_str("none");
        }
        for (i, net) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_themselves_whatever_they_send() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("203.0.113.9"), &headers(&["1.1.1.1"])),
            ip("203.0.113.9")
        );
        let lb = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            lb.client_ip(ip("203.0.113.9"), &headers(&["1.1.1.1"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_proxies_name_the_client_nearest_untrusted_hop_wins() {
        let t = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        // client 198.51.100.7 -> LB 10.1.1.1 -> us
        assert_eq!(
            t.client_ip(ip("10.1.1.1"), &headers(&["198.51.100.7"])),
            ip("198.51.100.7")
        );
        // a forged leftmost entry is ignored: the LB appended the real peer
        assert_eq!(
            t.client_ip(ip("10.1.1.1"), &headers(&["6.6.6.6, 198.51.100.7"])),
            ip("198.51.100.7")
        );
        // two trusted hops, across two header lines, with ports
        assert_eq!(
            t.client_ip(
                ip("127.0.0.1"),
                &headers(&["198.51.100.7:4444", "10.2.2.2"])
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), &headers(&["[2001:db8::5]:443"])),
            ip("2001:db8::5")
        );
        // no header, or only trusted hops: the last address known
        assert_eq!(
            t.client_ip(ip("10.1.1.1"), &HeaderMap::new()),
            ip("10.1.1.1")
        );
        assert_eq!(
            t.client_ip(ip("10.1.1.1"), &headers(&["10.3.3.3"])),
            ip("10.3.3.3")
        );
        // garbage stops the walk at the last good hop
        assert_eq!(
            t.client_ip(ip("10.1.1.1"), &headers(&["198.51.100.7, unknown"])),
            ip("10.1.1.1")
        );
        // IPv4-mapped IPv6 peers match IPv4 networks
        assert_eq!(
            t.client_ip(ip("::ffff:10.1.1.1"), &headers(&["198.51.100.7"])),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry() {
        let e = TrustedProxies::parse("10.0.0.0/8, proxy.local").unwrap_err();
        assert!(e.contains("proxy.local"), "{e}");
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("").unwrap().is_empty());
    }
}
