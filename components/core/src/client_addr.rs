//! Which client a request comes from, for the per-client abuse limits (docs/auth.md, "Whose
//! limit an attempt counts against").
//!
//! Two sources, chosen by the deployment (`trusted_client_ip_header`):
//!
//! - **Off** (the default): the peer address of the TCP connection as the host reports it
//!   (Spin's `spin-client-addr` request header, `ip:port`). Forwarding headers are ignored:
//!   any client can write them.
//! - **A trusted header** named by the operator, for a deployment reachable only through its
//!   proxy or CDN. The address is the **right-most** element of that header (across all of its
//!   lines): the one the proxy in front of the app appended or set. Everything to its left was
//!   written by the client (or by proxies further out) and is never read. For `Forwarded`
//!   (RFC 7239) it is the `for=` parameter of the right-most element; any other name is read
//!   as a comma-separated list of addresses (`X-Forwarded-For`, or single-address headers such
//!   as `X-Real-IP`, `CF-Connecting-IP`, `Fly-Client-IP`). A right-most element that is not an
//!   address (empty, `unknown`, an obfuscated `_name`, garbage, not UTF-8), or no such header
//!   at all, falls back to the peer address.
//!
//! Addresses may carry a port (`203.0.113.9:5678`, `[2001:db8::1]:443`) or an IPv6 zone
//! (`fe80::1%eth0`); both are dropped. An IPv4-mapped IPv6 address (`::ffff:203.0.113.9`, what
//! a dual-stack socket reports for an IPv4 peer) is that IPv4 address.
//!
//! The limit's subject ([`bucket`]) is the IPv4 address itself, or for IPv6 the /64 prefix: one
//! IPv6 subscriber or host usually holds a whole /64 and can pick any address in it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::Ipv6Net;

use crate::config::ConfigError;

/// The request header in which Spin (and the embedded host) passes the connection's peer.
pub const PEER_HEADER: &str = "spin-client-addr";

/// The Spin variable naming the trusted header.
pub const TRUSTED_HEADER_VARIABLE: &str = "trusted_client_ip_header";

/// Reads `trusted_client_ip_header`: empty (or blank) is off (`None`); otherwise an HTTP header
/// name (RFC 9110 token), returned lower-cased.
pub fn trusted_header(value: &str) -> Result<Option<String>, ConfigError> {
    let name = value.trim();
    if name.is_empty() {
        return Ok(None);
    }
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if !name.chars().all(tchar) {
        return Err(ConfigError {
            variable: TRUSTED_HEADER_VARIABLE,
            problem: format!(
                "`{name}` is not an HTTP header name (e.g. X-Forwarded-For); leave it empty when \
                 no proxy is in front of the app"
            ),
        });
    }
    Ok(Some(name.to_ascii_lowercase()))
}

/// The client's address: from the trusted header when one is configured (`trusted` = its name
/// and every value the request carries for it, in order) and its right-most element is an
/// address; otherwise from the peer address (`peer`, the `spin-client-addr` value). `None`
/// when neither gives an address.
pub fn client_ip<V: AsRef<[u8]>>(
    peer: Option<&str>,
    trusted: Option<(&str, &[V])>,
) -> Option<IpAddr> {
    trusted
        .and_then(|(name, values)| forwarded_ip(name, values))
        .or_else(|| peer.and_then(parse_addr))
        .map(canonical)
}

/// The address in the right-most element of a forwarding header (`values`: its lines, in
/// order), or `None` when that element is not one.
pub fn forwarded_ip<V: AsRef<[u8]>>(name: &str, values: &[V]) -> Option<IpAddr> {
    let last_line = std::str::from_utf8(values.last()?.as_ref()).ok()?;
    // `rsplit` always yields at least one (possibly empty) element.
    let element = last_line.rsplit(',').next()?;
    if name.eq_ignore_ascii_case("forwarded") {
        let value = element.split(';').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            key.trim().eq_ignore_ascii_case("for").then_some(value)
        })?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        parse_addr(value)
    } else {
        parse_addr(element)
    }
}

/// One address as hosts and proxies write it: `203.0.113.9`, `203.0.113.9:5678`,
/// `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443`, optionally with an IPv6 zone
/// (`%eth0`) and surrounding spaces. Anything else is `None`.
pub fn parse_addr(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let v6 = |s: &str| {
        let without_zone = s.split_once('%').map_or(s, |(addr, _zone)| addr);
        without_zone.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    };
    let is_port = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return if port_ok { v6(inside) } else { None };
    }
    if let Ok(ip) = text.parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(ip));
    }
    match text.split_once(':') {
        // Exactly one colon: an IPv4 address with a port.
        Some((ip, port)) if !port.contains(':') => {
            if is_port(port) {
                ip.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
            } else {
                None
            }
        }
        // Two or more: a bare IPv6 address (a port would need brackets).
        Some(_) => v6(text),
        None => None,
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 address it maps.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The subject of a per-client limit: the IPv4 address (`203.0.113.9`), the IPv6 /64 prefix
/// (`2001:db8:1:2::/64`), or `unknown` when the host named no address.
pub fn bucket(ip: Option<IpAddr>) -> String {
    match ip.map(canonical) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => Ipv6Net::new_assert(v6, 64).trunc().to_string(),
        None => "unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The bucket of a request with this peer and, when configured, these header lines.
    fn subject(peer: Option<&str>, trusted: Option<(&str, &[&str])>) -> String {
        bucket(client_ip(peer, trusted))
    }

    #[test]
    fn peer_addresses_as_hosts_write_them() {
        assert_eq!(parse_addr("203.0.113.9:5678"), Some(ip("203.0.113.9")));
        assert_eq!(parse_addr("203.0.113.9"), Some(ip("203.0.113.9")));
        assert_eq!(parse_addr("[2001:db8::1]:443"), Some(ip("2001:db8::1")));
        assert_eq!(parse_addr("[2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(parse_addr("2001:db8::1"), Some(ip("2001:db8::1")));
        assert_eq!(parse_addr(" 198.51.100.2 "), Some(ip("198.51.100.2")));
        assert_eq!(parse_addr("[fe80::1%2]:80"), Some(ip("fe80::1")));
        assert_eq!(parse_addr("fe80::1%eth0"), Some(ip("fe80::1")));
        // The host's own form for a dual-stack socket, and IPv4-mapped written bare.
        assert_eq!(
            subject(Some("[::ffff:203.0.113.9]:40000"), None),
            "203.0.113.9"
        );
        assert_eq!(subject(Some("127.0.0.1:8777"), None), "127.0.0.1");
    }

    #[test]
    fn malformed_addresses_are_none() {
        for bad in [
            "",
            " ",
            "unknown",
            "_hidden",
            "example.com",
            "example.com:80",
            "203.0.113",
            "203.0.113.256",
            "203.0.113.9:",
            "203.0.113.9:http",
            "203.0.113.9:123456",
            "203.0.113.9:1:2",
            "[203.0.113.9]:80",
            "[2001:db8::1",
            "[2001:db8::1]x",
            "[2001:db8::1]:",
            "2001:db8::g",
            "1.2.3.4, 5.6.7.8",
        ] {
            assert_eq!(parse_addr(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn ipv4_by_address_ipv6_by_64() {
        assert_eq!(bucket(Some(ip("203.0.113.9"))), "203.0.113.9");
        assert_ne!(
            bucket(Some(ip("203.0.113.9"))),
            bucket(Some(ip("203.0.113.10")))
        );
        let a = bucket(Some(ip("2001:db8:1:2::1")));
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(bucket(Some(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))), a);
        assert_eq!(bucket(Some(ip("2001:db8:1:2:abcd::9"))), a);
        assert_ne!(bucket(Some(ip("2001:db8:1:3::1"))), a);
        assert_eq!(bucket(Some(ip("::1"))), "::/64");
        // IPv4-mapped IPv6 is the IPv4 client, not the ::ffff:0:0/64 everyone mapped shares.
        assert_eq!(bucket(Some(ip("::ffff:203.0.113.9"))), "203.0.113.9");
        assert_ne!(
            bucket(Some(ip("::ffff:203.0.113.9"))),
            bucket(Some(ip("::ffff:203.0.113.10")))
        );
        // IPv4-compatible (deprecated) addresses are IPv6: `::1` is not 0.0.0.1.
        assert_eq!(bucket(Some(ip("::0.0.0.1"))), "::/64");
        assert_eq!(bucket(None), "unknown");
    }

    #[test]
    fn off_by_default_forwarding_headers_are_ignored() {
        // Without a trusted header only the peer counts, whatever the client writes.
        assert_eq!(subject(Some("192.0.2.1:5000"), None), "192.0.2.1");
        assert_eq!(subject(None, None), "unknown");
    }

    #[test]
    fn the_rightmost_element_of_x_forwarded_for() {
        let xff = |lines: &[&str]| subject(Some("10.0.0.2:443"), Some(("x-forwarded-for", lines)));
        assert_eq!(xff(&["203.0.113.9"]), "203.0.113.9");
        // The client's left part is never read, whatever it holds.
        assert_eq!(xff(&["198.51.100.1, 203.0.113.9"]), "203.0.113.9");
        assert_eq!(xff(&["garbage, , 2001:db8::1 ,203.0.113.9"]), "203.0.113.9");
        // Several lines are one list: the last line's last element.
        assert_eq!(xff(&["198.51.100.1", "203.0.113.9"]), "203.0.113.9");
        assert_eq!(
            xff(&["198.51.100.1, 192.0.2.5", "10.1.1.1, 203.0.113.9"]),
            "203.0.113.9"
        );
        // A port and brackets are dropped; IPv6 is bucketed by /64, mapped IPv4 as IPv4.
        assert_eq!(xff(&["203.0.113.9:61000"]), "203.0.113.9");
        assert_eq!(xff(&["[2001:db8:7:8::1]:61000"]), "2001:db8:7:8::/64");
        assert_eq!(xff(&["2001:db8:7:8::abcd"]), "2001:db8:7:8::/64");
        assert_eq!(xff(&["::ffff:203.0.113.9"]), "203.0.113.9");
    }

    #[test]
    fn malformed_or_missing_header_falls_back_to_the_peer() {
        let peer = Some("[2001:db8:aa:bb::5]:443");
        let with = |lines: &[&str]| subject(peer, Some(("x-forwarded-for", lines)));
        let fallback = "2001:db8:aa:bb::/64";
        assert_eq!(with(&[]), fallback);
        for bad in [
            "",
            "unknown",
            "203.0.113.9,",
            "203.0.113.9, garbage",
            "203.0.113.9 203.0.113.10",
            "example.com",
        ] {
            assert_eq!(with(&[bad]), fallback, "{bad:?}");
        }
        // A good address in an earlier line does not rescue a bad right-most one.
        assert_eq!(with(&["203.0.113.9", "junk"]), fallback);
        // Bytes that are not UTF-8.
        let raw: [&[u8]; 1] = [b"203.0.113.9\xff"];
        assert_eq!(
            bucket(client_ip(peer, Some(("x-forwarded-for", &raw[..])))),
            fallback
        );
        // And with neither, the bucket is `unknown`.
        assert_eq!(
            subject(None, Some(("x-forwarded-for", &["junk"]))),
            "unknown"
        );
        assert_eq!(subject(Some("not an address"), None), "unknown");
    }

    #[test]
    fn forwarded_rfc7239_for_parameter() {
        let fwd = |lines: &[&str]| subject(Some("10.0.0.2:443"), Some(("forwarded", lines)));
        assert_eq!(fwd(&["for=203.0.113.9"]), "203.0.113.9");
        assert_eq!(
            fwd(&["for=198.51.100.1;proto=https, for=203.0.113.9;proto=https;by=10.0.0.2"]),
            "203.0.113.9"
        );
        assert_eq!(
            fwd(&[
                "for=198.51.100.1",
                "proto=https; For=\"[2001:db8:cafe::17]:4711\""
            ]),
            "2001:db8:cafe::/64"
        );
        // Obfuscated or unknown `for`, or none: the peer.
        assert_eq!(fwd(&["for=_hidden"]), "10.0.0.2");
        assert_eq!(fwd(&["for=unknown"]), "10.0.0.2");
        assert_eq!(fwd(&["for=203.0.113.9, proto=http"]), "10.0.0.2");
        // Read as a plain list under another name, the same text is not an address.
        assert_eq!(
            subject(
                Some("10.0.0.2:443"),
                Some(("x-forwarded-for", &["for=203.0.113.9"]))
            ),
            "10.0.0.2"
        );
    }

    #[test]
    fn the_setting() {
        assert_eq!(trusted_header(""), Ok(None));
        assert_eq!(trusted_header("  "), Ok(None));
        assert_eq!(
            trusted_header("X-Forwarded-For"),
            Ok(Some("x-forwarded-for".into()))
        );
        assert_eq!(
            trusted_header(" CF-Connecting-IP "),
            Ok(Some("cf-connecting-ip".into()))
        );
        for bad in [
            "X-Forwarded-For:",
            "x forwarded for",
            "x-forwarded-for,forwarded",
            "é",
        ] {
            let e = trusted_header(bad).unwrap_err();
            assert_eq!(e.variable, "trusted_client_ip_header", "{bad:?}");
        }
    }
}
