//! `allowed_outbound_hosts`: parsing entries and checking destinations, with Spin's semantics.
//!
//! Reproduces `crates/outbound-networking-config/src/allowed_hosts.rs` (Spin 3.x/4.x):
//!
//! * An entry is `<scheme>://<host>[:<port>]`, trimmed of surrounding whitespace. The scheme is
//!   `*` or alphabetic letters, compared *exactly* with the (lower-case) scheme of the
//!   destination. The host is `*`, `*.<domain>` (any subdomain, not the domain itself),
//!   `self`/`self.alt` (relative requests to the app itself), an IPv4/IPv6 CIDR block
//!   (`10.0.0.0/8`, `2001:db8::/32`; host bits are truncated), or a literal domain / IP address
//!   (IPv6 in brackets), normalised like a URL host, so case-insensitive. The port is a number,
//!   `*`, or a half-open range `start..end` (end excluded); without a port the scheme's
//!   well-known port is implied and a scheme without one (including `*`) is an error.
//! * A trailing `/` is tolerated; any other path is rejected.
//! * `insecure:allow-all` as the only entry is rejected with Spin's hint to use `*://*:*`
//!   (it only ever meant something in the deprecated `allowed_http_hosts`).
//! * Templated entries (`https://{{ host }}`) are resolved with the app variables. Before the
//!   app runs, Spin validates templated entries using default values only
//!   ([`AllowedHosts::validate`]).
//! * Two sets of rules ([`Rules`]): released Spin's (3.x up to 4.0.2, and the 3.6.3 inside
//!   SpinKube's containerd shim), the default, and those of Spin's main branch (2026), which
//!   skip a templated entry that resolves to nothing, so an empty variable can switch an optional
//!   endpoint off, and which read IPv6 literals and CIDR blocks without a port.
//! * `http://*.spin.internal` (service chaining) is expanded to one entry per component of the
//!   app ([`AllowedHosts::with_service_chaining_components`]).
//!
//! The refusal message and manifest hint follow `crates/runtime-factors/src/lib.rs`.

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;
use url::{Host, Url};

use crate::variables::{Resolver, Template, VariableError};

/// Service-chaining hosts are `<component-id>.spin.internal`.
pub const SERVICE_CHAINING_DOMAIN_SUFFIX: &str = ".spin.internal";

/// The schemes Spin checks relative (`self`) HTTP requests against.
const RELATIVE_SCHEMES: [&str; 2] = ["http", "https"];

/// Errors from parsing `allowed_outbound_hosts`. Messages keep Spin's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowedHostsError {
    #[error("'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want to allow all outbound traffic'")]
    InsecureAllowAll,
    /// An entry (as written, or as resolved from a template) is malformed.
    #[error("invalid allowed_outbound_hosts entry {entry:?}: {reason}")]
    InvalidEntry { entry: String, reason: String },
    /// A templated entry could not be parsed or resolved.
    #[error("allowed_outbound_hosts entry {entry:?}: {source}")]
    Template {
        entry: String,
        #[source]
        source: VariableError,
    },
    /// Spin's load-time check: the template resolved with default values is malformed.
    #[error("using default variable value(s) with template {template:?} results in invalid config {resolved:?}: {reason}")]
    InvalidDefault {
        template: String,
        resolved: String,
        reason: String,
    },
}

/// Which Spin's rules apply to `allowed_outbound_hosts`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rules {
    /// Released Spin, 3.x up to 4.0.2 (`crates/outbound-networking-config` at `v4.0.2`): a
    /// templated entry that resolves to `https://` (an empty variable) is malformed, at load
    /// time when it is the default and at run time otherwise; the port is whatever follows the
    /// last `:`, so `http://[::1]` is malformed; a wildcard suffix is taken as written (compared
    /// case-sensitively); any number of trailing `/` is tolerated.
    #[default]
    Released,
    /// Spin's main branch (2026): a templated entry resolving to `""`, `http://` or `https://`
    /// is skipped; IPv6 literals and CIDR blocks need no port; a wildcard suffix must be a
    /// domain (normalised); one trailing `/` at most.
    Main,
}

/// A component's parsed `allowed_outbound_hosts`. The default allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

impl AllowedHosts {
    /// Parses literal entries (no templates left in them), like Spin's parse of a manifest
    /// entry without `{{ }}`. Every entry must be valid; an empty entry is an error.
    pub fn parse(entries: &[String], rules: Rules) -> Result<Self, AllowedHostsError> {
        reject_insecure_allow_all(entries)?;
        let entries = entries
            .iter()
            .map(|e| AllowedHost::parse(e, rules))
            .collect::<Result<_, _>>()?;
        Ok(Self { entries })
    }

    /// Parses entries as written in the manifest, resolving templates with the app variables
    /// (provider values, then defaults) — what Spin does when a component first makes an
    /// outbound connection. Under [`Rules::Main`], templated entries resolving to `""`,
    /// `http://` or `https://` are skipped; under [`Rules::Released`] they are malformed.
    ///
    /// Spin does not refuse to start when this fails (e.g. a template naming an undeclared
    /// variable, or an environment value that is not a valid host): it logs the error and
    /// refuses every outbound connection of that component. Run [`Self::validate`] at startup
    /// for the checks Spin does make before serving.
    pub fn resolve(
        entries: &[String],
        resolver: &Resolver,
        rules: Rules,
    ) -> Result<Self, AllowedHostsError> {
        reject_insecure_allow_all(entries)?;
        // As Spin: literal entries and template syntax first (`parse_partial`), then each
        // template is resolved, keeping the entries' order.
        let partial = entries
            .iter()
            .map(|entry| match parse_template(entry)? {
                None => AllowedHost::parse(entry, rules).map(Ok),
                Some(_) => Ok(Err(entry)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut parsed = Vec::with_capacity(entries.len());
        for item in partial {
            match item {
                Ok(host) => parsed.push(host),
                Err(entry) => {
                    let resolved = resolver.resolve_template(entry).map_err(|source| {
                        AllowedHostsError::Template {
                            entry: entry.clone(),
                            source,
                        }
                    })?;
                    if let Some(host) = parse_resolved(&resolved, rules)? {
                        parsed.push(host);
                    }
                }
            }
        }
        Ok(Self { entries: parsed })
    }

    /// The load-time check of Spin's loader: literal entries must parse; a templated entry
    /// must parse after substituting *default* values, unless some variable in it has no
    /// default (or is undeclared), in which case it is not checked until run time.
    pub fn validate(
        entries: &[String],
        resolver: &Resolver,
        rules: Rules,
    ) -> Result<(), AllowedHostsError> {
        reject_insecure_allow_all(entries)?;
        // Spin's order (`parse_partial`, then each template): every literal entry and every
        // template's syntax first, so a malformed literal is reported before a bad default.
        let mut templates = Vec::new();
        for entry in entries {
            match parse_template(entry)? {
                None => drop(AllowedHost::parse(entry, rules)?),
                Some(template) => templates.push((entry, template)),
            }
        }
        for (entry, template) in templates {
            let Ok(resolved) = resolver.resolve_template_with_defaults(entry) else {
                continue;
            };
            parse_resolved(&resolved, rules).map_err(|err| AllowedHostsError::InvalidDefault {
                template: template.to_string(),
                resolved: resolved.clone(),
                reason: match err {
                    AllowedHostsError::InvalidEntry { reason, .. } => reason,
                    other => other.to_string(),
                },
            })?;
        }
        Ok(())
    }

    /// Replaces each `*.spin.internal` wildcard with one literal entry per component id, as
    /// Spin does: wildcard service chaining reaches the app's components, nothing else.
    pub fn with_service_chaining_components<S: AsRef<str>>(self, component_ids: &[S]) -> Self {
        let entries = self
            .entries
            .into_iter()
            .flat_map(|entry| match &entry.host {
                HostSpec::AnySubdomain(suffix) if suffix == SERVICE_CHAINING_DOMAIN_SUFFIX => {
                    component_ids
                        .iter()
                        .map(|id| AllowedHost {
                            host: HostSpec::Literal(Host::Domain(format!(
                                "{}{SERVICE_CHAINING_DOMAIN_SUFFIX}",
                                id.as_ref()
                            ))),
                            ..entry.clone()
                        })
                        .collect()
                }
                _ => vec![entry],
            })
            .collect();
        Self { entries }
    }

    /// Is a connection to this URL allowed? Scheme, host and port are checked; the path,
    /// query and credentials are ignored. Without an explicit port the scheme's well-known
    /// port is assumed (`http` 80, `https` 443, `redis` 6379, `mysql` 3306, `postgres` 5432,
    /// `mqtt` 1883); other schemes then only match entries with port `*`.
    pub fn allows(&self, url: &Url) -> bool {
        // Re-parse the host as Spin does: for non-special schemes (redis://, mysql://, ...)
        // the `url` crate keeps the host opaque (not lower-cased, IPs not recognised).
        let Some(host) = url.host_str().and_then(|h| Host::parse(h).ok()) else {
            return false;
        };
        self.entries
            .iter()
            .any(|e| e.allows(url.scheme(), &host, url.port()))
    }

    /// Checks an address string the way Spin's `check_url` does: see [`parse_outbound_url`].
    /// An address that cannot be parsed is refused.
    pub fn allows_address(&self, address: &str, default_scheme: &str) -> bool {
        parse_outbound_url(address, default_scheme).is_some_and(|url| self.allows(&url))
    }

    /// Are relative HTTP requests to the app itself allowed? True when an entry with scheme
    /// `http`, `https` or `*` has host `self`, `self.alt` or `*` (any port).
    pub fn allows_relative(&self) -> bool {
        self.entries.iter().any(|e| {
            RELATIVE_SCHEMES.iter().any(|s| e.scheme.allows(s))
                && matches!(e.host, HostSpec::Any | HostSpec::ToSelf)
        })
    }

    /// The manifest line Spin suggests when `url` is refused, e.g.
    /// `allowed_outbound_hosts = ["http://example.com:8080"]`. Spin prints it as
    /// `To allow this request, add 'allowed_outbound_hosts = ["…"]' to the manifest component section.`
    pub fn suggestion(url: &Url) -> String {
        format!("allowed_outbound_hosts = [\"{}\"]", Self::host_pattern(url))
    }

    /// The suggestion for a refused relative (self) request.
    pub fn relative_suggestion() -> String {
        "allowed_outbound_hosts = [\"http://self\"]".to_string()
    }

    /// `<scheme>://<host>[:<port>]` of a destination, as in Spin's log line
    /// `Outbound network destination not allowed: <pattern>`. The port appears only when the
    /// URL carries one that is not the scheme's URL-standard default.
    pub fn host_pattern(url: &Url) -> String {
        let host = url.host_str().unwrap_or_default();
        match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        }
    }

    /// The entries as written (after template resolution).
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.original.as_str())
    }
}

/// Spin rejects `insecure:allow-all` with a dedicated message only when it is the sole entry;
/// elsewhere it fails like any entry without a scheme.
fn reject_insecure_allow_all(entries: &[String]) -> Result<(), AllowedHostsError> {
    if entries.len() == 1 && entries[0] == "insecure:allow-all" {
        return Err(AllowedHostsError::InsecureAllowAll);
    }
    Ok(())
}

/// `Some(template)` when the entry contains `{{ }}` holes, `None` for a literal entry.
fn parse_template(entry: &str) -> Result<Option<Template>, AllowedHostsError> {
    let template = Template::parse(entry).map_err(|source| AllowedHostsError::Template {
        entry: entry.to_string(),
        source,
    })?;
    Ok((!template.is_literal()).then_some(template))
}

/// Parses a *resolved template*. Under [`Rules::Main`] an empty resolution disables the entry
/// instead of failing (Spin main's `parse_or_skip`); released Spin parses it like any entry.
fn parse_resolved(resolved: &str, rules: Rules) -> Result<Option<AllowedHost>, AllowedHostsError> {
    let empty = resolved.is_empty() || resolved == "http://" || resolved == "https://";
    if empty && rules == Rules::Main {
        Ok(None)
    } else {
        AllowedHost::parse(resolved, rules).map(Some)
    }
}

/// Parses an outbound address as Spin's `OutboundUrl::parse` does: credentials before the
/// host are percent-encoded first (so `redis://user:pa#ss@host` works), and when the string
/// does not parse as a URL with a host, `<default_scheme>://` is prepended and it is retried
/// (so `db.example.com:3306` with `mysql` works).
pub fn parse_outbound_url(address: &str, default_scheme: &str) -> Option<Url> {
    let mut address = address.to_string();
    if let Some(at) = address.find('@') {
        let userinfo_start = address.find("://").map(|i| i + 3).unwrap_or(0);
        // Like Spin, the first '/' after the scheme ends the authority.
        let path_start = address[userinfo_start..]
            .find('/')
            .map(|i| i + userinfo_start)
            .unwrap_or(usize::MAX);
        if at < path_start && at >= userinfo_start {
            let encoded = percent_encode_all(&address[userinfo_start..at]);
            address.replace_range(userinfo_start..at, &encoded);
        }
    }
    match Url::parse(&address) {
        Ok(url) if url.has_host() => Some(url),
        _ => Url::parse(&format!("{default_scheme}://{address}")).ok(),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (what `urlencoding::encode`,
/// used by Spin, does).
fn percent_encode_all(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One parsed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    original: String,
    scheme: SchemeSpec,
    host: HostSpec,
    port: PortSpec,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemeSpec {
    Any,
    /// As written: Spin compares it with the destination's scheme byte for byte.
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostSpec {
    Any,
    /// `*.example.com`, stored as `.example.com` (normalised, lower case).
    AnySubdomain(String),
    /// `self` / `self.alt`: only relative requests, never an absolute URL.
    ToSelf,
    Literal(Host<String>),
    Cidr(Cidr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortSpec {
    Any,
    Port(u16),
    /// Half-open: `8000..9000` allows 8000 through 8999.
    Range(Range<u16>),
}

/// An IP network with its host bits cleared (`ip_network::IpNetwork::from_str_truncate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr(IpNet);

/// Builds an error carrying Spin's context chain as one message.
fn invalid(entry: &str, reason: impl fmt::Display) -> AllowedHostsError {
    AllowedHostsError::InvalidEntry {
        entry: entry.to_string(),
        reason: reason.to_string(),
    }
}

impl AllowedHost {
    /// Spin's `AllowedHostConfig::parse`, including its order of checks (port, then scheme,
    /// then host), so the same entries fail with the same complaint.
    fn parse(original: &str, rules: Rules) -> Result<Self, AllowedHostsError> {
        let entry = original.trim();
        let Some((scheme, rest)) = entry.split_once("://") else {
            return Err(match entry {
                "*" | ":" | "" | "?" => invalid(
                    original,
                    format!(
                        "{entry:?} is not an allowed outbound host format.\nHosts must be in the form <scheme>://<host>[:<port>], with '*' wildcards allowed for each.\nIf you intended to allow all outbound networking, you can use '*://*:*' - this will obviate all network sandboxing.\nLearn more: https://spinframework.dev/v3/http-outbound#granting-http-permissions-to-components"
                    ),
                ),
                _ => invalid(
                    original,
                    format!(
                        "{entry:?} does not contain a scheme (e.g., 'http://' or '*://')\nLearn more: https://spinframework.dev/v3/http-outbound#granting-http-permissions-to-components"
                    ),
                ),
            });
        };

        // Split host from port at the last ':'. Spin main first checks whether the whole
        // remainder is itself a valid host (an IPv6 literal or CIDR block, whose colons are not
        // port separators); released Spin does not (`http://[::1]` has port "1]").
        let (host, port) = match rest.rsplit_once(':') {
            None => (rest, ""),
            Some((host, "")) => (host, ""),
            Some((host, tail)) => {
                if rules == Rules::Main && HostSpec::parse(rest, rules).is_ok() {
                    (rest, "")
                } else {
                    let port = match tail.split_once('/') {
                        Some((_, path)) if !path.is_empty() => {
                            return Err(invalid(
                                original,
                                format!("{entry:?} has a path but is not allowed to"),
                            ));
                        }
                        Some((port, _)) => port,
                        None => tail,
                    };
                    (host, port)
                }
            }
        };

        let port = PortSpec::parse(port, scheme)
            .map_err(|e| invalid(original, format!("Invalid allowed host port {port:?}: {e}")))?;
        let scheme = SchemeSpec::parse(scheme).map_err(|e| {
            invalid(
                original,
                format!("Invalid allowed host scheme {scheme:?}: {e}"),
            )
        })?;
        let host = HostSpec::parse(host, rules)
            .map_err(|e| invalid(original, format!("Invalid allowed host {host:?}: {e}")))?;

        Ok(Self {
            original: original.to_string(),
            scheme,
            host,
            port,
        })
    }

    fn allows(&self, scheme: &str, host: &Host<String>, port: Option<u16>) -> bool {
        self.scheme.allows(scheme) && self.host.allows(host) && self.port.allows(port, scheme)
    }
}

impl SchemeSpec {
    fn parse(scheme: &str) -> Result<Self, String> {
        if scheme == "*" {
            Ok(Self::Any)
        } else if scheme.starts_with('{') {
            Err("scheme lists are not supported".into())
        } else if scheme.chars().any(|c| !c.is_alphabetic()) {
            Err("only alphabetic characters are allowed".into())
        } else {
            Ok(Self::Exact(scheme.to_string()))
        }
    }

    fn allows(&self, scheme: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(s) => s == scheme,
        }
    }
}

impl HostSpec {
    fn parse(host: &str, rules: Rules) -> Result<Self, String> {
        let host = host.trim();
        if host == "*" {
            return Ok(Self::Any);
        }
        if host == "self" || host == "self.alt" {
            return Ok(Self::ToSelf);
        }
        if host.starts_with('{') {
            return Err(if host.ends_with('}') {
                "host lists are not yet supported".into()
            } else {
                "unterminated host list".into()
            });
        }
        if let Some(cidr) = Cidr::parse(host) {
            return Ok(Self::Cidr(cidr));
        }
        let host = match rules {
            Rules::Released => host.trim_end_matches('/'),
            Rules::Main => host.strip_suffix('/').unwrap_or(host),
        };
        if host.contains('/') {
            return Err("must not include a path".into());
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                return Err("wildcards are allowed only as prefixes".into());
            }
            if rules == Rules::Released {
                return Ok(Self::AnySubdomain(format!(".{domain}")));
            }
            return match Host::parse(domain) {
                Ok(Host::Domain(domain)) => Ok(Self::AnySubdomain(format!(".{domain}"))),
                Ok(_) => Err("wildcard suffix must be a domain".into()),
                Err(e) => Err(format!("invalid wildcard host \"*.{domain}\": {e}")),
            };
        }
        if host.contains('*') {
            return Err("wildcards are allowed only as subdomains".into());
        }
        Host::parse(host)
            .map(Self::Literal)
            .map_err(|e| e.to_string())
    }

    fn allows(&self, host: &Host<String>) -> bool {
        match (self, host) {
            (Self::Any, _) => true,
            (Self::AnySubdomain(suffix), Host::Domain(domain)) => domain.ends_with(suffix.as_str()),
            (Self::AnySubdomain(_), _) => false,
            (Self::Literal(literal), host) => literal == host,
            (Self::Cidr(cidr), Host::Ipv4(ip)) => cidr.contains(IpAddr::V4(*ip)),
            (Self::Cidr(cidr), Host::Ipv6(ip)) => cidr.contains(IpAddr::V6(*ip)),
            (Self::Cidr(_), Host::Domain(_)) => false,
            // `self` is only for relative requests, see `allows_relative`.
            (Self::ToSelf, _) => false,
        }
    }
}

impl PortSpec {
    fn parse(port: &str, scheme: &str) -> Result<Self, String> {
        if port.is_empty() {
            return well_known_port(scheme).map(Self::Port).ok_or_else(|| {
                format!("no port was provided and the scheme {scheme:?} does not have a known default port number")
            });
        }
        if port == "*" {
            return Ok(Self::Any);
        }
        if port.starts_with('{') {
            return Err("port lists are not yet supported".into());
        }
        if let Some((start, end)) = port.split_once("..") {
            let bad = |_| format!("port range {port:?} contains non-number");
            return Ok(Self::Range(
                start.parse().map_err(bad)?..end.parse().map_err(bad)?,
            ));
        }
        port.parse()
            .map(Self::Port)
            .map_err(|_| format!("port {port:?} is not a number"))
    }

    fn allows(&self, port: Option<u16>, scheme: &str) -> bool {
        if *self == Self::Any {
            return true;
        }
        let Some(port) = port.or_else(|| well_known_port(scheme)) else {
            return false;
        };
        match self {
            Self::Any => true,
            Self::Port(p) => *p == port,
            Self::Range(r) => r.contains(&port),
        }
    }
}

impl Cidr {
    /// `<ip>/<prefix>` with the host bits cleared; `None` if it is not one (a bare IP is not).
    fn parse(s: &str) -> Option<Self> {
        let (ip, prefix) = s.split_once('/')?;
        if ip.is_empty() || prefix.is_empty() {
            return None;
        }
        let ip: IpAddr = ip.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        Some(Self(IpNet::new(ip, prefix).ok()?.trunc()))
    }

    /// False for an address of the other family.
    fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

/// The default port Spin assumes for a scheme when an entry or a destination has none.
fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::variables::AppVariable;
    use std::collections::BTreeMap;

    /// Entries parsed with both sets of rules, which must agree; see `released_and_main_differ`
    /// for the entries where they do not.
    fn hosts(entries: &[&str]) -> AllowedHosts {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        let released = AllowedHosts::parse(&entries, Rules::Released)
            .unwrap_or_else(|e| panic!("{entries:?}: {e}"));
        let main = AllowedHosts::parse(&entries, Rules::Main)
            .unwrap_or_else(|e| panic!("{entries:?}: {e}"));
        assert_eq!(released.entries.len(), main.entries.len());
        released
    }

    /// Main's rules: the ones the cases below were taken from.
    fn main_hosts(entries: &[&str]) -> AllowedHosts {
        let entries: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        AllowedHosts::parse(&entries, Rules::Main).unwrap_or_else(|e| panic!("{entries:?}: {e}"))
    }

    fn parse_with(entry: &str, rules: Rules) -> Result<AllowedHosts, AllowedHostsError> {
        AllowedHosts::parse(&[entry.to_string()], rules)
    }

    fn parse_one(entry: &str) -> Result<AllowedHosts, AllowedHostsError> {
        parse_with(entry, Rules::Released)
    }

    /// Entries only Spin main reads as the table below expects (IPv6 literals without a port,
    /// wildcard suffixes compared normalised).
    const MAIN_ONLY: [&str; 3] = [
        "http://[::1]",
        "http://*.Example.COM",
        "http://2001:db8::/32",
    ];

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// (entries, destination, allowed?) — cases from Spin's allowed_hosts.rs tests plus
    /// the ports/redis/IP cases this host relies on.
    #[test]
    fn allow_table() {
        let cases: &[(&[&str], &str, bool)] = &[
            // Default ports from the scheme, on both sides.
            (&["http://example.com"], "http://example.com/foo", true),
            (&["http://example.com"], "http://example.com:80", true),
            (&["http://example.com"], "http://example.com:8080", false),
            (&["http://example.com"], "https://example.com", false),
            (&["https://example.com"], "https://example.com:443/x", true),
            (
                &["http://example.com:8080"],
                "http://example.com:8080/a?b",
                true,
            ),
            (&["http://example.com:8080"], "http://example.com", false),
            (&["http://example.com:443"], "http://example.com:443", true),
            // Hosts are compared as normalised URL hosts: case-insensitive.
            (&["http://Example.COM"], "http://example.com", true),
            (&["http://example.com"], "http://EXAMPLE.com", true),
            (&["http://example.com"], "http://www.example.com", false),
            // Trailing slash tolerated.
            (&["https://my.api.com/"], "https://my.api.com", true),
            // Wildcards.
            (&["*://*:*"], "tcp://127.0.0.1:5000", true),
            (&["*://*:*"], "https://anything.example:1", true),
            (&["http://*:*"], "https://example.com", false),
            (&["http://*"], "http://example.com", true),
            (&["http://*"], "http://example.com:8080", false),
            (&["*://example.com:*"], "mysql://example.com", true),
            (&["http://*.example.com"], "http://a.example.com/foo", true),
            (&["http://*.example.com"], "http://a.b.example.com", true),
            (&["http://*.example.com"], "http://example.com", false),
            (&["http://*.example.com"], "http://myexample.com", false),
            (
                &["http://*.example2.com:8383"],
                "http://a.b.example2.com:8383",
                true,
            ),
            (
                &["http://*.example2.com:8383"],
                "http://a.b.example2.com",
                false,
            ),
            (&["http://*.Example.COM"], "http://foo.example.com", true),
            // Port ranges are half-open.
            (
                &["http://example.com:8000..9000"],
                "http://example.com:8000",
                true,
            ),
            (
                &["http://example.com:8000..9000"],
                "http://example.com:8999",
                true,
            ),
            (
                &["http://example.com:8000..9000"],
                "http://example.com:9000",
                false,
            ),
            // Scheme must match exactly; no default port for unknown schemes.
            (&["tcp://example.com:*"], "tcp://example.com", true),
            (&["tcp://example.com:5000"], "tcp://example.com", false),
            // Redis, incl. default port 6379, case-insensitive opaque hosts, IPs, credentials.
            (&["redis://localhost"], "redis://localhost", true),
            (&["redis://localhost"], "redis://localhost:6379/0", true),
            (&["redis://localhost"], "redis://localhost:6380", false),
            (&["redis://localhost:6380"], "redis://localhost:6380", true),
            (&["redis://localhost"], "redis://LocalHost", true),
            (&["redis://127.0.0.1:6379"], "redis://127.0.0.1", true),
            (&["redis://localhost"], "redis://user:pw@localhost", true),
            (&["redis://*:*"], "redis://cache.internal:7000", true),
            (&["redis://localhost"], "rediss://localhost", false),
            (&["http://localhost"], "redis://localhost", false),
            (&["mysql://db"], "mysql://db", true),
            (&["postgres://db"], "postgres://db:5432", true),
            (&["mqtt://broker"], "mqtt://broker:1883", true),
            // IP literals and CIDR blocks.
            (&["http://127.0.0.1"], "http://127.0.0.1/", true),
            (&["http://127.0.0.1"], "http://127.0.0.2/", false),
            (&["http://[::1]"], "http://[::1]/some/path", true),
            (&["http://[::1]"], "http://[::1]:80", true),
            (&["http://[::1]"], "http://[::2]", false),
            (&["http://[::1]"], "http://[::1]:81", false),
            (&["*://127.0.0.1/24:63551"], "tcp://127.0.0.1:63551", true),
            (&["*://127.0.0.1/24:63551"], "tcp://127.0.0.200:63551", true),
            (&["*://127.0.0.1/24:63551"], "tcp://127.0.1.1:63551", false),
            (&["http://10.0.0.0/8"], "http://10.20.30.40", true),
            (&["http://10.0.0.0/8"], "http://example.com", false),
            (
                &["http://2001:db8::/32"],
                "http://[2001:db8:abcd::1]/x",
                true,
            ),
            (&["http://2001:db8::/32"], "http://[2001:db9::1]", false),
            (&["http://*.example.com"], "http://127.0.0.1", false),
            // `self` never matches an absolute URL.
            (&["http://self"], "http://self", false),
            (&["http://self"], "http://localhost", false),
            // Several entries: any match allows.
            (&["http://a.com", "redis://b.com"], "redis://b.com", true),
            (&[], "http://example.com", false),
        ];
        for (entries, dest, expected) in cases {
            let allowed = if entries.iter().any(|e| MAIN_ONLY.contains(e)) {
                main_hosts(entries)
            } else {
                hosts(entries)
            };
            assert_eq!(
                allowed.allows(&url(dest)),
                *expected,
                "{entries:?} -> {dest}"
            );
        }
    }

    #[test]
    fn relative_requests() {
        for (entries, expected) in [
            (&["http://self"][..], true),
            (&["https://self"], true),
            (&["http://self.alt"], true),
            (&["http://self:8080"], true),
            (&["*://self:*"], true),
            (&["*://*:*"], true),
            (&["http://*"], true),
            (&["redis://self"], false),
            (&["http://localhost"], false),
            (&["http://*.example.com"], false),
            (&[], false),
        ] {
            assert_eq!(hosts(entries).allows_relative(), expected, "{entries:?}");
        }
    }

    /// Entries that Spin 4.0.2 and Spin main read differently: the host follows released Spin
    /// unless told otherwise (`streamgate-host up --spin-main-allowed-hosts`).
    #[test]
    fn released_and_main_differ() {
        // Released Spin splits the port at the last ':' whatever precedes it.
        for entry in [
            "http://[::1]",
            "https://[2001:db8::1]",
            "http://ff00::/8",
            "https://2001:db8::/32",
            "http://::1/128",
        ] {
            parse_with(entry, Rules::Main).unwrap_or_else(|e| panic!("{entry:?}: {e}"));
            assert!(
                parse_with(entry, Rules::Released).is_err(),
                "Spin 4.0.2 rejects {entry:?}"
            );
        }
        // Released Spin trims every trailing '/' and takes a wildcard suffix as written.
        for entry in [
            "http://example.com//",
            "http://*.example.com//",
            "http://*.127.0.0.1",
            "http://*.192.168.001.001",
        ] {
            parse_with(entry, Rules::Released).unwrap_or_else(|e| panic!("{entry:?}: {e}"));
            assert!(
                parse_with(entry, Rules::Main).is_err(),
                "Spin main rejects {entry:?}"
            );
        }
        // ... so a wildcard suffix in capitals never matches a (lower-cased) destination there.
        let released = AllowedHosts::parse(&["http://*.Example.COM".into()], Rules::Released);
        assert!(!released.unwrap().allows(&url("http://foo.example.com")));
        assert!(main_hosts(&["http://*.Example.COM"]).allows(&url("http://foo.example.com")));
        // Both read a port after an IPv6 literal or CIDR block.
        for rules in [Rules::Released, Rules::Main] {
            for entry in [
                "http://[::1]:8080",
                "http://2001:db8::/32:443",
                "*://[::1]:80",
            ] {
                parse_with(entry, rules).unwrap_or_else(|e| panic!("{entry:?} {rules:?}: {e}"));
            }
        }
    }

    #[test]
    fn rejected_entries() {
        // From Spin's rejects_* tests, plus no-scheme and scheme/port rules.
        let released_accepts = [
            "http://example.com//",
            "http://*.example.com//",
            "http://self//",
            "http://*.127.0.0.1",
            "http://*.192.168.001.001",
            "http://*.",
            "http://*.:8080",
        ];
        for bad in [
            "http://example.com:notaport",
            "http://example.com:8080..70000",
            "http://self:notaport",
            "http://self.alt:notaport",
            "http://*:notaport",
            "http://127.0.0.1:notaport",
            "http://[::1]:notaport",
            "http://*.example.com:notaport",
            "http://*.example.com:8080..",
            "http://*.example.com:8O8O",
            "http://example.com:8080/p",
            "http://*.example.com:8080/p",
            "http://*.example.com/p",
            "http://example.com/path",
            "http://127.0.0.0/24/p",
            "http://[::1junk",
            "http://*.",
            "http://*.:8080",
            "example.com:8080",
            "example.com",
            "http://example%.com",
            "http://example%2.com",
            "http://example%GG.com",
            "http://exa[mple.com",
            r"http://exa\mple.com",
            "http://example.com:80:90",
            "http://[vG.example]",
            "http://[::1]/foo",
            "http://ff00::/8/extra",
            "http://[::1",
            "http://[::1]junk",
            "http://[::1]::80",
            "http://[v1.]",
            "[::1]",
            "[::1]:8080",
            "http://example.com//",
            "http://*.example.com//",
            "http://self//",
            "http://[::1]//",
            "http://*.127.0.0.1",
            "http://*.192.168.001.001",
            "http://*.[::1]",
            "http://*.[2001:db8::1]",
            "http://ex*ample.com",
            "http://*.*.example.com",
            "http://invalid host",
            // No default port for `*` or unknown schemes; scheme must be letters.
            "*://example.com",
            "tcp://example.com",
            "HTTP://example.com",
            "h2c0://example.com:80",
            "{http,https}://example.com:80",
            "http://{a,b}:80",
            "http://example.com:{80,443}",
            "http://example.com:99999",
            "",
            "*",
            "?",
            ":",
        ] {
            assert!(
                parse_with(bad, Rules::Main).is_err(),
                "expected {bad:?} to be rejected"
            );
            if !released_accepts.contains(&bad) {
                assert!(
                    parse_with(bad, Rules::Released).is_err(),
                    "expected Spin 4.0.2 to reject {bad:?}"
                );
            }
        }
    }

    #[test]
    fn accepted_entries() {
        for good in [
            "http://example.com",
            "  https://example.com  ",
            "http://example.com:",
            "http://[::1]:8080/",
            "http://[::1]:*",
            "http://[::1]:8000..9000",
            "*://[::1]:80",
            "http://ff00::/8",
            "https://2001:db8::/32",
            "http://2001:db8::/32:443",
            "http://::1/128",
            "http://10.0.0.0/8",
            "*://*:*",
            "HTTP://example.com:80",
            "http://self",
            "http://self.alt",
            "mysql://xyz.com",
            "redis://myredishost.com:6379",
            "http://*.spin.internal",
        ] {
            parse_with(good, Rules::Main).unwrap_or_else(|e| panic!("{good:?}: {e}"));
            let ipv6_without_port = matches!(
                good,
                "http://ff00::/8" | "https://2001:db8::/32" | "http://::1/128"
            );
            if !ipv6_without_port {
                parse_one(good).unwrap_or_else(|e| panic!("Spin 4.0.2, {good:?}: {e}"));
            }
        }
    }

    #[test]
    fn error_messages_name_the_entry() {
        let err = parse_one("http://example.com:99999")
            .unwrap_err()
            .to_string();
        assert!(err.contains("http://example.com:99999"), "{err}");
        assert!(err.contains("Invalid allowed host port \"99999\""), "{err}");

        let err = parse_one("example.com").unwrap_err().to_string();
        assert!(err.contains("does not contain a scheme"), "{err}");

        let err = parse_one("*://example.com").unwrap_err().to_string();
        assert!(
            err.contains("does not have a known default port number"),
            "{err}"
        );

        assert_eq!(
            parse_one("insecure:allow-all").unwrap_err(),
            AllowedHostsError::InsecureAllowAll
        );
        // Only special-cased as the sole entry.
        let two = ["insecure:allow-all".to_string(), "http://a.com".to_string()];
        let err = AllowedHosts::parse(&two, Rules::Released)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not contain a scheme"), "{err}");
    }

    #[test]
    fn suggestions_match_spin_hint() {
        for (dest, expected) in [
            (
                "http://example.com:8080/x?y",
                r#"allowed_outbound_hosts = ["http://example.com:8080"]"#,
            ),
            (
                "http://example.com/",
                r#"allowed_outbound_hosts = ["http://example.com"]"#,
            ),
            (
                "https://example.com:443/",
                r#"allowed_outbound_hosts = ["https://example.com"]"#,
            ),
            (
                "redis://cache:6379",
                r#"allowed_outbound_hosts = ["redis://cache:6379"]"#,
            ),
            (
                "redis://user:pw@cache",
                r#"allowed_outbound_hosts = ["redis://cache"]"#,
            ),
            (
                "http://[::1]:3000",
                r#"allowed_outbound_hosts = ["http://[::1]:3000"]"#,
            ),
        ] {
            assert_eq!(AllowedHosts::suggestion(&url(dest)), expected, "{dest}");
        }
        assert_eq!(
            AllowedHosts::relative_suggestion(),
            r#"allowed_outbound_hosts = ["http://self"]"#
        );
    }

    #[test]
    fn outbound_addresses_like_spin() {
        let mysql = hosts(&["mysql://xyz.com"]);
        // test_hash_char_in_db_password
        assert!(mysql.allows_address("mysql://user:pass#word@xyz.com", "mysql"));
        assert!(mysql.allows_address("mysql://user%3Apass%23word@xyz.com", "mysql"));
        assert!(mysql.allows_address("user%3Apass%23word@xyz.com", "mysql"));
        assert!(mysql.allows_address("xyz.com:3306", "mysql"));
        assert!(!mysql.allows_address("not a url", "mysql"));

        let redis = hosts(&["redis://cache.example.com"]);
        assert!(redis.allows_address("redis://:p#ss@cache.example.com:6379", "redis"));
        assert!(redis.allows_address("cache.example.com", "redis"));
        assert!(!redis.allows_address("redis://other.example.com", "redis"));

        let http = hosts(&["https://spin.fermyon.dev"]);
        assert!(http.allows_address("spin.fermyon.dev:443", "https"));
        assert!(http.allows_address("https://spin.fermyon.dev/x", "https"));
    }

    #[test]
    fn service_chaining_expands_to_components() {
        let allowed = hosts(&["http://*.spin.internal", "http://*.example.com"])
            .with_service_chaining_components(&["first", "second"]);
        assert!(allowed.allows(&url("http://first.spin.internal")));
        assert!(allowed.allows(&url("http://second.spin.internal/x")));
        assert!(!allowed.allows(&url("http://third.spin.internal")));
        assert!(allowed.allows(&url("http://a.example.com")));
    }

    fn resolver(vars: &[(&str, Option<&str>)], env: &[(&str, &str)]) -> Resolver {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Resolver::new(
            vars.iter()
                .map(|(name, default)| AppVariable {
                    name: name.to_string(),
                    default: default.map(Into::into),
                    required: default.is_none(),
                    secret: false,
                })
                .collect(),
            BTreeMap::new(),
            move |name| env.get(name).cloned(),
        )
        .unwrap()
    }

    fn strings(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn templated_entries() {
        let r = resolver(
            &[
                ("dbhost", Some("example.com")),
                ("dbport", Some("1234")),
                ("one", Some("")),
            ],
            &[("dbport", "5678")],
        );
        // variables_make_hosts_valid; the provider overrides the default.
        let allowed = AllowedHosts::resolve(
            &strings(&["http://{{ dbhost }}", "redis://{{ dbhost }}:{{ dbport }}"]),
            &r,
            Rules::Released,
        )
        .unwrap();
        assert!(allowed.allows(&url("http://example.com")));
        assert!(allowed.allows(&url("redis://example.com:5678")));
        assert!(!allowed.allows(&url("redis://example.com:1234")));

        // allowed_hosts_ignores_empty_due_to_empty_variables (Spin main only)
        let optional = strings(&["https://{{ one }}", "{{ one }}", "https://three"]);
        let allowed = AllowedHosts::resolve(&optional, &r, Rules::Main).unwrap();
        assert_eq!(allowed.entries().collect::<Vec<_>>(), ["https://three"]);
        // ...but a literal empty entry is still an error.
        assert!(AllowedHosts::resolve(&strings(&[""]), &r, Rules::Main).is_err());
        // Spin 4.0.2 parses what the template gives: `https://` is malformed.
        for entry in ["https://{{ one }}", "{{ one }}"] {
            let err = AllowedHosts::resolve(&strings(&[entry]), &r, Rules::Released).unwrap_err();
            assert!(
                matches!(err, AllowedHostsError::InvalidEntry { .. }),
                "{err}"
            );
        }

        // Undeclared variable / malformed template: errors at resolution.
        assert!(matches!(
            AllowedHosts::resolve(&strings(&["http://{{ nope }}"]), &r, Rules::Released),
            Err(AllowedHostsError::Template { .. })
        ));
        assert!(
            AllowedHosts::resolve(&strings(&["http://{{ dbhost"]), &r, Rules::Released).is_err()
        );
    }

    #[test]
    fn load_time_validation_uses_defaults_only() {
        // valid_hosts_are_valid / invalid_hosts_are_invalid
        let r = resolver(
            &[("dbhost", Some("zoinks, Scooby!")), ("required_host", None)],
            &[("required_host", "example.com")],
        );
        AllowedHosts::validate(
            &strings(&["http://x.y", "*://my.db:*"]),
            &r,
            Rules::Released,
        )
        .unwrap();
        AllowedHosts::validate(
            &strings(&["http://x.y", "zootle! wurdl!", "}{ !!**"]),
            &r,
            Rules::Released,
        )
        .unwrap_err();
        // bad_variables_make_hosts_invalid, with Spin's message shape.
        let err = AllowedHosts::validate(&strings(&["http://{{ dbhost }}"]), &r, Rules::Released)
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "using default variable value(s) with template \"http://{{ dbhost }}\" results in invalid config \"http://zoinks, Scooby!\""
            ),
            "{err}"
        );
        // missing_variables_ignored_when_checking_validity: no default, or undeclared.
        AllowedHosts::validate(
            &strings(&["http://{{ required_host }}"]),
            &r,
            Rules::Released,
        )
        .unwrap();
        AllowedHosts::validate(&strings(&["http://{{ undeclared }}"]), &r, Rules::Released)
            .unwrap();
        // Malformed template and insecure:allow-all are still load-time errors.
        AllowedHosts::validate(&strings(&["http://{{ x"]), &r, Rules::Released).unwrap_err();
        AllowedHosts::validate(&strings(&["insecure:allow-all"]), &r, Rules::Released).unwrap_err();
    }

    /// Spin parses every literal entry (and every template's syntax) before it checks any
    /// template's default, so of two problems the literal one is reported.
    #[test]
    fn literal_entries_are_checked_before_template_defaults() {
        let r = resolver(&[("bad", Some("invalid host"))], &[]);
        let entries = strings(&["https://{{ bad }}", "nope"]);
        let err = AllowedHosts::validate(&entries, &r, Rules::Released).unwrap_err();
        assert!(
            err.to_string().contains("does not contain a scheme"),
            "{err}"
        );
        let err = AllowedHosts::resolve(&entries, &r, Rules::Released).unwrap_err();
        assert!(
            err.to_string().contains("does not contain a scheme"),
            "{err}"
        );
        let err = AllowedHosts::validate(&entries[..1], &r, Rules::Released).unwrap_err();
        assert!(
            matches!(err, AllowedHostsError::InvalidDefault { .. }),
            "{err}"
        );
    }

    /// The check that kept `spin.toml` from loading on released Spin: a default that empties a
    /// templated entry. Spin 4.0.2 refuses it with this message; Spin main skips the entry.
    #[test]
    fn empty_default_is_malformed_on_released_spin() {
        let r = resolver(
            &[("tls_host", Some("")), ("plain_host", Some("rpc:8545"))],
            &[],
        );
        let entries = strings(&["http://{{ plain_host }}", "https://{{ tls_host }}"]);
        let err = AllowedHosts::validate(&entries, &r, Rules::Released).unwrap_err();
        assert_eq!(
            err.to_string(),
            "using default variable value(s) with template \"https://{{ tls_host }}\" results in \
             invalid config \"https://\": Invalid allowed host \"\": empty host"
        );
        AllowedHosts::validate(&entries, &r, Rules::Main).unwrap();
        // A value set at run time that empties the entry: released Spin cannot parse the
        // component's allowed hosts at all, so it refuses all of its outbound connections.
        let r = resolver(&[("tls_host", Some("rpc.invalid"))], &[("tls_host", "")]);
        let entries = strings(&["https://{{ tls_host }}"]);
        AllowedHosts::validate(&entries, &r, Rules::Released).unwrap();
        AllowedHosts::resolve(&entries, &r, Rules::Released).unwrap_err();
        assert_eq!(
            AllowedHosts::resolve(&entries, &r, Rules::Main)
                .unwrap()
                .entries()
                .count(),
            0
        );
    }
}
