//! A PostgreSQL URL with libpq's host list: `postgres://user:pw@h1:p1,h2:p2/db?target_session_attrs=read-write`.
//! sqlx parses one host; this splits the list so that the storage can build one connection per
//! host and pick the one that takes writes. Pure text: no connection, no sqlx.

/// libpq's default port, for a host given without one.
pub const POSTGRES_PORT_DEFAULT: u16 = 5432;

/// Which server of the list a session may use (libpq's `target_session_attrs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSession {
    /// The first host that answers (libpq's default).
    Any,
    /// The first host whose `transaction_read_only` is `off` (the primary).
    ReadWrite,
}

/// One server of the list; `host` without brackets (`::1`), percent-decoding left to the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgHost {
    pub host: String,
    pub port: u16,
}

/// A PostgreSQL URL split into its hosts and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgUrl {
    pub hosts: Vec<PgHost>,
    pub target: TargetSession,
    /// The URL with the first host only and `target_session_attrs` removed: what a one-host
    /// parser takes (user, password, database and the other parameters unchanged).
    pub single_host_url: String,
}

impl PgUrl {
    /// The one-host URL of `host` (for the driver's parser).
    pub fn url_for(&self, host: &PgHost) -> String {
        replace_authority_host(&self.single_host_url, host)
    }
}

/// Splits `url`. The error says what is wrong without repeating the URL (it may hold a password).
pub fn parse_pg_url(url: &str) -> Result<PgUrl, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "the database url did not parse: no `://` after the scheme".to_owned())?;
    if scheme != "postgres" && scheme != "postgresql" {
        return Err("the database url did not parse: the scheme is not postgres".to_owned());
    }
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    // A password may hold an encoded `@`; the last `@` before the path ends the user part.
    let (authority, tail) = rest.split_at(end);
    let (user_info, host_list) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let mut hosts = Vec::new();
    for item in host_list.split(',') {
        hosts.push(parse_host(item)?);
    }
    let (path, query) = match tail.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (tail, None),
    };
    let mut target = TargetSession::Any;
    let mut kept = Vec::new();
    for pair in query.into_iter().flat_map(|q| q.split('&')) {
        match pair.split_once('=') {
            Some(("target_session_attrs", value)) => {
                target = match value {
                    "read-write" => TargetSession::ReadWrite,
                    "any" => TargetSession::Any,
                    other => {
                        return Err(format!(
                            "target_session_attrs={other} is not supported: use read-write (the primary) or any"
                        ));
                    }
                }
            }
            _ if pair.is_empty() => {}
            _ => kept.push(pair),
        }
    }
    let user = user_info.map(|u| format!("{u}@")).unwrap_or_default();
    let query = if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    };
    let first = &hosts[0];
    let single_host_url = format!("{scheme}://{user}{}{path}{query}", authority_of(first));
    Ok(PgUrl {
        hosts,
        target,
        single_host_url,
    })
}

fn parse_host(item: &str) -> Result<PgHost, String> {
    let bad = |why: &str| format!("the database url did not parse: {why}");
    let (host, port) = if let Some(v6) = item.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 host lacks its closing `]`"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(bad("unexpected text after an IPv6 host")),
            },
        }
    } else {
        match item.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (item, None),
        }
    };
    if host.is_empty() {
        return Err(bad("a host of the list is empty"));
    }
    let port = match port {
        None | Some("") => POSTGRES_PORT_DEFAULT,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("a port is not a number from 1 to 65535"))?,
    };
    Ok(PgHost {
        host: host.to_owned(),
        port,
    })
}

fn authority_of(host: &PgHost) -> String {
    if host.host.contains(':') {
        format!("[{}]:{}", host.host, host.port)
    } else {
        format!("{}:{}", host.host, host.port)
    }
}

/// `single` has exactly one host: swap it.
fn replace_authority_host(single: &str, host: &PgHost) -> String {
    let Some((scheme, rest)) = single.split_once("://") else {
        return single.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let user = match authority.rfind('@') {
        Some(at) => &authority[..=at],
        None => "",
    };
    format!("{scheme}://{user}{}{tail}", authority_of(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(url: &str) -> Vec<(String, u16)> {
        parse_pg_url(url)
            .unwrap()
            .hosts
            .into_iter()
            .map(|h| (h.host, h.port))
            .collect()
    }

    #[test]
    fn a_url_without_a_scheme_separator_is_refused_without_echoing_it() {
        let e = parse_pg_url("postgres:secret@h/db").unwrap_err();
        assert!(e.contains("did not parse"), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn a_bad_port_is_refused_without_echoing_the_password() {
        let e = parse_pg_url("postgres://u:s3cret@h1:5432,h2:nope/db").unwrap_err();
        assert!(e.contains("port"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        assert!(parse_pg_url("postgres://u@h1:0/db").is_err());
        assert!(parse_pg_url("postgres://u@h1,,h2/db").is_err());
        assert!(parse_pg_url("postgres://u@[::1/db").is_err());
    }

    #[test]
    fn other_session_targets_are_refused_by_name() {
        for attrs in ["prefer-standby", "standby", "read-only", "primary"] {
            let e = parse_pg_url(&format!("postgres://u@h/db?target_session_attrs={attrs}"))
                .unwrap_err();
            assert!(e.contains(attrs) && e.contains("read-write"), "{e}");
        }
    }

    #[test]
    fn one_host_stays_one_host_and_any_is_the_default() {
        let url = parse_pg_url("postgres://postgres@127.0.0.1:5432/test").unwrap();
        assert_eq!(
            url.hosts,
            vec![PgHost {
                host: "127.0.0.1".into(),
                port: 5432
            }]
        );
        assert_eq!(url.target, TargetSession::Any);
        assert_eq!(
            url.single_host_url,
            "postgres://postgres@127.0.0.1:5432/test"
        );
    }

    #[test]
    fn a_host_list_splits_and_read_write_is_taken_out_of_the_query() {
        let url = parse_pg_url(
            "postgresql://u@h1:6442,h2:6443/paygate?sslmode=disable&target_session_attrs=read-write",
        )
        .unwrap();
        assert_eq!(
            hosts("postgres://u@h1:6442,h2:6443/paygate"),
            vec![("h1".into(), 6442), ("h2".into(), 6443)]
        );
        assert_eq!(url.target, TargetSession::ReadWrite);
        assert_eq!(
            url.single_host_url,
            "postgresql://u@h1:6442/paygate?sslmode=disable"
        );
        assert_eq!(
            url.url_for(&url.hosts[1]),
            "postgresql://u@h2:6443/paygate?sslmode=disable"
        );
        let any = parse_pg_url("postgres://u@h1,h2/db?target_session_attrs=any").unwrap();
        assert_eq!(any.target, TargetSession::Any);
        assert_eq!(any.single_host_url, "postgres://u@h1:5432/db");
    }

    #[test]
    fn a_missing_or_empty_port_is_the_default_one() {
        assert_eq!(
            hosts("postgres://u@h1,h2:,h3:7000/db"),
            vec![
                ("h1".into(), 5432),
                ("h2".into(), 5432),
                ("h3".into(), 7000)
            ]
        );
        assert_eq!(hosts("postgres://db.bank"), vec![("db.bank".into(), 5432)]);
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets_out_of_the_host_and_in_the_url() {
        let url = parse_pg_url("postgres://u@[::1]:5433,[fe80::2]/db").unwrap();
        assert_eq!(
            hosts("postgres://u@[::1]:5433,[fe80::2]/db"),
            vec![("::1".into(), 5433), ("fe80::2".into(), 5432)]
        );
        assert_eq!(url.single_host_url, "postgres://u@[::1]:5433/db");
        assert_eq!(url.url_for(&url.hosts[1]), "postgres://u@[fe80::2]:5432/db");
    }

    #[test]
    fn a_percent_encoded_password_passes_through_untouched() {
        let url = parse_pg_url("postgres://pay:p%40ss%2Cw%3Ard@h1:1,h2:2/db").unwrap();
        assert_eq!(url.hosts.len(), 2);
        assert_eq!(
            url.single_host_url,
            "postgres://pay:p%40ss%2Cw%3Ard@h1:1/db"
        );
        assert_eq!(
            url.url_for(&url.hosts[1]),
            "postgres://pay:p%40ss%2Cw%3Ard@h2:2/db"
        );
    }
}
