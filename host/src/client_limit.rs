//! Connections per client address (`--max-connections-per-client`).
//!
//! One client must not hold every connection, and through them every instance slot. A client
//! is an IPv4 address, or an IPv6 /64 (one customer's allocation: a client that owns a /64
//! could otherwise take a fresh address per connection). A connection over the cap is not
//! refused at accept: it is answered, to its first request, `503 overloaded` with
//! `Retry-After` and `Connection: close`, so a legitimate client behind a crowded NAT learns
//! why. It reaches no component and takes no slot, and the header-read timeout still bounds
//! one that never sends a request.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ClientKey {
    V4(Ipv4Addr),
    /// The upper 64 bits of the address.
    V6Net(u64),
}

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4),
                None => Self::V6Net((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

impl std::fmt::Display for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::V4(v4) => write!(f, "{v4}"),
            Self::V6Net(net) => {
                let a = std::net::Ipv6Addr::from(u128::from(*net) << 64);
                write!(f, "{a}/64")
            }
        }
    }
}

#[derive(Default)]
struct Open {
    count: usize,
    /// Whether the client is at the cap and its refusal has been logged.
    refusing: bool,
}

/// Counts each client's open connections against a cap (0: no cap, nothing counted).
pub struct ClientConnections {
    cap: usize,
    open: Mutex<HashMap<ClientKey, Open>>,
}

/// A counted connection; dropping it gives the connection back.
pub struct ClientGuard {
    counted: Option<(Arc<ClientConnections>, ClientKey)>,
}

impl ClientConnections {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a new connection from `ip`, or `None` when the client is at its cap.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ClientGuard> {
        if self.cap == 0 {
            return Some(ClientGuard { counted: None });
        }
        let key = ClientKey::of(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let entry = open.entry(key).or_default();
        if entry.count >= self.cap {
            if !entry.refusing {
                entry.refusing = true;
                tracing::warn!(
                    "client {key} holds {} connections, the most one client may (--max-connections-per-client); more are answered 503 until it closes some",
                    self.cap
                );
            }
            return None;
        }
        entry.count += 1;
        Some(ClientGuard {
            counted: Some((self.clone(), key)),
        })
    }

    #[cfg(test)]
    fn count(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap();
        open.get(&ClientKey::of(ip)).map_or(0, |o| o.count)
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let Some((owner, key)) = self.counted.take() else {
            return;
        };
        let mut open = owner.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = open.get_mut(&key) {
            entry.count -= 1;
            entry.refusing = false;
            if entry.count == 0 {
                open.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_gets_its_cap_and_no_more_until_it_closes_one() {
        let clients = ClientConnections::new(2);
        let a = clients.admit(ip("10.0.0.1")).unwrap();
        let _b = clients.admit(ip("10.0.0.1")).unwrap();
        assert!(clients.admit(ip("10.0.0.1")).is_none());
        // Another client is not affected.
        assert!(clients.admit(ip("10.0.0.2")).is_some());
        drop(a);
        assert!(clients.admit(ip("10.0.0.1")).is_some());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let clients = ClientConnections::new(2);
        let _a = clients.admit(ip("2001:db8:1:2::1")).unwrap();
        let _b = clients.admit(ip("2001:db8:1:2:ffff::9")).unwrap();
        assert!(clients.admit(ip("2001:db8:1:2::3")).is_none());
        assert!(clients.admit(ip("2001:db8:1:3::1")).is_some());
        let _c = clients.admit(ip("::ffff:192.0.2.7")).unwrap();
        assert_eq!(clients.count(ip("192.0.2.7")), 1);
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2::1")).to_string(),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn no_cap_counts_nothing() {
        let clients = ClientConnections::new(0);
        let guards: Vec<_> = (0..1000)
            .map(|_| clients.admit(ip("10.0.0.1")).unwrap())
            .collect();
        assert_eq!(clients.count(ip("10.0.0.1")), 0);
        drop(guards);
    }
}
