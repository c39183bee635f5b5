//! What a Redis URL names: one server, a cluster reached through seed
//! nodes, or a master found through Sentinel.
//!
//! - `redis://[user:password@]host:port[/db]` and `rediss://...` (TLS): one
//!   server, parsed by the `redis` crate as before.
//! - `redis+cluster://[user:password@]host:port[,host:port...]` (and
//!   `rediss+cluster://`): a Redis Cluster; any reachable seed node is enough,
//!   the others are found with `CLUSTER SLOTS`.
//! - `redis+sentinel://[user:password@]host:port[,host:port...]/master[/db]`
//!   (and `rediss+sentinel://` for TLS to Redis): the master that the
//!   sentinels name. The user and password are Redis'; the sentinels' own
//!   come as `?sentinel_username=...&sentinel_password=...`.
//!
//! User names and passwords are percent-decoded.

use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};

/// One `host:port` of a multi-node URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeAddress {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for NodeAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// User and password for one kind of server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The deployment a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One server; the URL is handed to the `redis` crate unchanged.
    Server { url: String },
    /// A Redis Cluster, from its seed nodes.
    Cluster {
        seeds: Vec<NodeAddress>,
        credentials: Credentials,
        tls: bool,
    },
    /// The master a set of sentinels names.
    Sentinel {
        sentinels: Vec<NodeAddress>,
        master_name: String,
        db: i64,
        redis: Credentials,
        sentinel: Credentials,
        tls: bool,
    },
}

fn bad(reason: impl Into<String>) -> Error {
    Error::invalid("redis url", reason)
}

impl Target {
    /// Reads a URL. The error never repeats the URL, which may hold a
    /// password.
    pub(crate) fn parse(url: &str) -> Result<Target> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad(
                "expected redis://, rediss://, redis+cluster:// or redis+sentinel://",
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "redis" | "rediss" | "unix" | "redis+unix" => Ok(Target::Server {
                url: url.to_string(),
            }),
            "redis+cluster" | "rediss+cluster" => {
                let parts = Parts::split(rest)?;
                if !parts.path.is_empty() {
                    return Err(bad(
                        "a cluster URL has no path: a cluster has only database 0",
                    ));
                }
                if let Some(key) = parts.query.iter().map(|(k, _)| k).next() {
                    return Err(bad(format!("unknown cluster URL parameter {key:?}")));
                }
                Ok(Target::Cluster {
                    seeds: parts.nodes,
                    credentials: parts.credentials,
                    tls: scheme.starts_with("rediss"),
                })
            }
            "redis+sentinel" | "rediss+sentinel" => {
                let parts = Parts::split(rest)?;
                let mut segments = parts.path.split('/').filter(|s| !s.is_empty());
                let Some(master_name) = segments.next() else {
                    return Err(bad(
                        "a sentinel URL names the master after the hosts: redis+sentinel://host:port,host:port/mymaster",
                    ));
                };
                let db = match segments.next() {
                    None => 0,
                    Some(db) => db
                        .parse::<i64>()
                        .map_err(|_| bad(format!("database {db:?} is not a number")))?,
                };
                if segments.next().is_some() {
                    return Err(bad("a sentinel URL's path is /master or /master/db"));
                }
                let mut sentinel = Credentials::default();
                for (key, value) in parts.query {
                    match key.as_str() {
                        "sentinel_username" => sentinel.username = Some(value),
                        "sentinel_password" => sentinel.password = Some(value),
                        other => {
                            return Err(bad(format!(
                                "unknown sentinel URL parameter {other:?}; expected sentinel_username or sentinel_password"
                            )))
                        }
                    }
                }
                Ok(Target::Sentinel {
                    sentinels: parts.nodes,
                    master_name: decode(master_name)?,
                    db,
                    redis: parts.credentials,
                    sentinel,
                    tls: scheme.starts_with("rediss"),
                })
            }
            other => Err(bad(format!(
                "unknown scheme {other:?}; expected redis://, rediss://, redis+cluster:// or redis+sentinel://"
            ))),
        }
    }
}

/// The pieces after `scheme://`.
struct Parts {
    credentials: Credentials,
    nodes: Vec<NodeAddress>,
    path: String,
    query: Vec<(String, String)>,
}

impl Parts {
    fn split(rest: &str) -> Result<Parts> {
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, q),
            None => (rest, ""),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let credentials = match userinfo {
            None => Credentials::default(),
            Some(info) => {
                let (user, password) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                Credentials {
                    username: (!user.is_empty()).then(|| decode(user)).transpose()?,
                    password: password.map(decode).transpose()?,
                }
            }
        };
        let nodes = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(node)
            .collect::<Result<Vec<_>>>()?;
        if nodes.is_empty() {
            return Err(bad("no host:port given"));
        }
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                Ok((decode(k)?, decode(v)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Parts {
            credentials,
            nodes,
            path: path.to_string(),
            query,
        })
    }
}

fn node(text: &str) -> Result<NodeAddress> {
    let (host, port) = if let Some(inner) = text.strip_prefix('[') {
        let Some((host, after)) = inner.split_once(']') else {
            return Err(bad(format!("unclosed '[' in host {text:?}")));
        };
        (host, after.strip_prefix(':'))
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(bad(format!("empty host in {text:?}")));
    }
    let port = match port {
        None => 6379,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| bad(format!("port {p:?} of host {host:?} is not a port number")))?,
    };
    Ok(NodeAddress {
        host: host.to_string(),
        port,
    })
}

fn decode(text: &str) -> Result<String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| bad("a percent-encoded part is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(host: &str, port: u16) -> NodeAddress {
        NodeAddress {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn one_server_urls_pass_through() {
        for url in ["redis://127.0.0.1:6379/2", "rediss://u:p@h:1"] {
            assert_eq!(
                Target::parse(url).unwrap(),
                Target::Server { url: url.into() }
            );
        }
    }

    #[test]
    fn a_cluster_url_lists_its_seeds() {
        let t = Target::parse("redis+cluster://:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002").unwrap();
        assert_eq!(
            t,
            Target::Cluster {
                seeds: vec![
                    addr("10.0.0.1", 7000),
                    addr("10.0.0.2", 6379),
                    addr("::1", 7002)
                ],
                credentials: Credentials {
                    username: None,
                    password: Some("p@ss".into())
                },
                tls: false,
            }
        );
        assert!(matches!(
            Target::parse("rediss+cluster://h:1").unwrap(),
            Target::Cluster { tls: true, .. }
        ));
    }

    #[test]
    fn a_sentinel_url_names_the_master_and_both_passwords() {
        let t = Target::parse(
            "redis+sentinel://app:secret@h1:26379,h2:26380/mymaster/3?sentinel_password=s%26s",
        )
        .unwrap();
        assert_eq!(
            t,
            Target::Sentinel {
                sentinels: vec![addr("h1", 26379), addr("h2", 26380)],
                master_name: "mymaster".into(),
                db: 3,
                redis: Credentials {
                    username: Some("app".into()),
                    password: Some("secret".into())
                },
                sentinel: Credentials {
                    username: None,
                    password: Some("s&s".into())
                },
                tls: false,
            }
        );
    }

    #[test]
    fn mistakes_are_named_without_echoing_the_url() {
        let cases = [
            ("redis+sentinel://:pw@h1:26379", "names the master"),
            ("redis+cluster://h:notaport", "not a port number"),
            ("redis+cluster://:pw@", "no host:port"),
            ("http://h:1", "unknown scheme"),
            (
                "redis+sentinel://h:1/m?password=x",
                "unknown sentinel URL parameter",
            ),
            ("redis+cluster://h:1/2", "no path"),
        ];
        for (url, expected) in cases {
            let err = Target::parse(url).unwrap_err().to_string();
            assert!(err.contains(expected), "{url}: {err}");
            assert!(!err.contains("pw"), "{err}");
        }
    }
}
