//! HTTP trigger routing, as Spin's HTTP trigger does it.
//!
//! Spin (`crates/routes/src/lib.rs`) turns each `[[trigger.http]]` route into a
//! [`routefinder`] route spec and lets `routefinder` pick the best match. The precedence
//! rules that users observe (exact segments beat `:param` segments beat the trailing
//! wildcard, longer routes beat shorter ones, and among equally specific routes the one
//! declared first wins) are all properties of `routefinder`'s ordering, including some
//! quirks (trailing and repeated leading slashes of the request path are ignored, `.`
//! separates segments like `/` does). Re-implementing that ordering by hand would be an
//! easy way to drift from Spin, so this module uses the same crate and version Spin pins
//! (`routefinder = "0.5.4"`) and reproduces only the Spin-specific layer on top:
//!
//! * route/base sanitising (`sanitize_with_base`),
//! * `/...` wildcards rewritten to routefinder's `/*`,
//! * duplicate raw routes: the *last* declaration wins, in the position of the first,
//! * the `spin-path-info` trailing-slash rules, and
//! * the `spin-*` request headers (`crates/trigger-http/src/headers.rs`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use routefinder::{RouteSpec, Segment};

/// Requests under this prefix are answered by the Spin runtime itself
/// (`health`, `info`, anything else is a 404) and never reach the router.
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// Why a set of routes could not be turned into a [`Router`].
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The route is not a pattern Spin (routefinder) accepts, e.g. `/:` or `/*name`.
    #[error("Error parsing route {route} associated with component {component_id}: {reason}")]
    InvalidRoute {
        /// The route, including the base, as it was handed to the route parser.
        route: String,
        /// The component the route belongs to.
        component_id: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A route declared more than once (compared as written in the manifest). Spin logs these
/// ("The following component routes are duplicates and will never be used") and keeps going.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DuplicateRoute {
    /// The duplicated route including the base; `/` for the root route.
    pub route: String,
    /// The component whose route was replaced and will never be reached.
    pub replaced_id: String,
    /// The component that handles the route instead.
    pub effective_id: String,
}

/// One routable entry of a [`Router`], for listing routes at startup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteInfo {
    /// The component handling the route.
    pub component_id: String,
    /// The route including the base, without the wildcard suffix; `/` for the root.
    pub path: String,
    /// Whether the route ends in a wildcard (`/...`).
    pub is_wildcard: bool,
}

/// The result of routing a request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    /// The component that handles the request.
    pub component_id: String,
    /// `spin-matched-route`: the route as written, with the base prepended and trailing
    /// slash removed. Note that Spin's root route `/` is therefore the empty string.
    pub matched_route: String,
    /// `spin-component-route`: the route as written, minus a trailing `/...`.
    pub component_route: String,
    /// `spin-raw-component-route`: the route exactly as written in the manifest.
    pub raw_component_route: String,
    /// `spin-path-info`: the part of the path matched by a trailing wildcard, or `""`.
    pub path_info: String,
    /// The `:name` captures, in route order. The trailing wildcard is not a named capture
    /// in Spin; its value is [`Self::path_info`].
    pub params: Vec<(String, String)>,
}

/// What a route spec in the routefinder table maps to.
#[derive(Debug)]
struct Handler {
    component_id: String,
    /// Route with base, as Spin's `based_route`.
    based_route: String,
    /// Route exactly as written in the manifest.
    raw_route: String,
    /// `based_route` without the wildcard suffix; only used for listing routes.
    display_path: String,
    is_wildcard: bool,
}

/// Routes request paths to components.
#[derive(Clone, Debug)]
pub struct Router {
    inner: Arc<routefinder::Router<Handler>>,
    duplicates: Vec<DuplicateRoute>,
}

impl Router {
    /// Builds the router from `(component id, route)` pairs for every non-private HTTP
    /// trigger, in manifest order. `base` is the application base (always `/` for a v2
    /// manifest, since Spin rejects any other base).
    pub fn build(
        base: &str,
        routes: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Router, RouteError> {
        // Deduplicate by the route *as written* (not the based/sanitised form, so `/foo` and
        // `/foo/` are not duplicates of each other). Like Spin's IndexMap insert, a later
        // declaration replaces the earlier one but keeps its position in the order.
        let mut entries: Vec<(String, String, String)> = Vec::new(); // (raw, based, component)
        let mut index_of_raw: HashMap<String, usize> = HashMap::new();
        let mut duplicates = Vec::new();
        for (component_id, raw_route) in routes {
            let based_route = sanitize_with_base(base, &raw_route);
            match index_of_raw.get(&raw_route) {
                Some(&i) => {
                    let replaced = std::mem::replace(
                        &mut entries[i],
                        (raw_route, based_route, component_id.clone()),
                    );
                    duplicates.push(DuplicateRoute {
                        route: if replaced.1.is_empty() {
                            "/".to_owned()
                        } else {
                            replaced.1
                        },
                        replaced_id: replaced.2,
                        effective_id: component_id,
                    });
                }
                None => {
                    index_of_raw.insert(raw_route.clone(), entries.len());
                    entries.push((raw_route, based_route, component_id));
                }
            }
        }

        // Routes are added in declaration order. routefinder's ordering never treats two
        // specs as equal (an equally specific spec sorts after the ones already present),
        // so among equally specific routes the first declared wins a match.
        let mut router = routefinder::Router::new();
        for (raw_route, based_route, component_id) in entries {
            let invalid = |reason: String| RouteError::InvalidRoute {
                route: based_route.clone(),
                component_id: component_id.clone(),
                reason,
            };
            let (spec_text, wildcard_prefix) =
                if let Some(prefix) = based_route.strip_suffix("/...") {
                    (format!("{prefix}/*"), Some(prefix))
                } else if let Some(prefix) = based_route.strip_suffix("/*") {
                    (based_route.clone(), Some(prefix))
                } else {
                    (based_route.clone(), None)
                };
            let spec: RouteSpec = spec_text.parse().map_err(invalid)?;
            // routefinder only supports a wildcard as the last segment and panics while
            // matching otherwise (e.g. `/a/*/b`); Spin passes such routes through and would
            // fail at request time. Reject them up front instead.
            let segments = spec.segments();
            if let Some(i) = segments.iter().position(|s| *s == Segment::Wildcard) {
                if i + 1 != segments.len() {
                    return Err(invalid(
                        "a wildcard is only allowed at the end of a route (`/...`)".to_owned(),
                    ));
                }
            }
            let is_wildcard = wildcard_prefix.is_some();
            let display_path = match wildcard_prefix.unwrap_or(&based_route) {
                "" => "/".to_owned(),
                path => path.to_owned(),
            };
            let handler = Handler {
                is_wildcard,
                display_path,
                component_id,
                based_route,
                raw_route,
            };
            // Adding a parsed spec cannot fail (the conversion is infallible).
            let _ = router.add(spec, handler);
        }

        Ok(Router {
            inner: Arc::new(router),
            duplicates,
        })
    }

    /// Routes a request path (the URI path exactly as received, without the query).
    /// `None` means no route matched: the caller answers 404.
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let best = self.inner.best_match(path)?;
        let handler = best.handler();
        let captures = best.captures();

        // routefinder ignores trailing slashes, but Spin has always reported them in the
        // path info, so it is rebuilt from the wildcard capture and the original path.
        let path_info = match captures.wildcard() {
            None => String::new(),
            Some(rest) => match (rest.is_empty(), path.ends_with('/')) {
                (true, false) => String::new(),       // route /foo/..., path /foo
                (true, true) => "/".to_owned(),       // route /foo/..., path /foo/
                (false, false) => format!("/{rest}"), // path /foo/bar
                (false, true) => format!("/{rest}/"), // path /foo/bar/
            },
        };

        Some(RouteMatch {
            component_id: handler.component_id.clone(),
            matched_route: handler.based_route.clone(),
            component_route: handler
                .raw_route
                .strip_suffix("/...")
                .unwrap_or(&handler.raw_route)
                .to_owned(),
            raw_component_route: handler.raw_route.clone(),
            path_info,
            params: captures
                .iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        })
    }

    /// Routes that were declared more than once; only the last declaration is reachable.
    pub fn duplicates(&self) -> &[DuplicateRoute] {
        &self.duplicates
    }

    /// The routable entries, in the order they are tried.
    pub fn routes(&self) -> impl Iterator<Item = RouteInfo> + '_ {
        self.inner.iter().map(|(_, h)| RouteInfo {
            component_id: h.component_id.clone(),
            path: h.display_path.clone(),
            is_wildcard: h.is_wildcard,
        })
    }

    /// Whether any route lies under [`WELL_KNOWN_PREFIX`]; Spin logs an error for these
    /// because the runtime answers those paths itself.
    pub fn contains_reserved_route(&self) -> bool {
        self.inner
            .iter()
            .any(|(_, h)| h.based_route.starts_with(WELL_KNOWN_PREFIX))
    }
}

/// Spin's `sanitize_with_base`: make the route absolute, then drop one trailing slash from
/// both base and route and concatenate. The root route `/` with base `/` becomes `""`.
fn sanitize_with_base(base: &str, route: &str) -> String {
    let route = if route.starts_with('/') {
        route.to_owned()
    } else {
        format!("/{route}")
    };
    let strip = |s: &str| s.strip_suffix('/').unwrap_or(s).to_owned();
    format!("{}{}", strip(base), strip(&route))
}

/// The `spin-*` headers Spin adds to a routed request, in the order Spin adds them.
///
/// `full_url` is `scheme://host/path?query` as Spin builds it (the `Host` header, or
/// `localhost` without one). `spin-base-path` is always `/`: Spin hard-codes it (the base
/// of a v2 app is always `/`), so `_base` does not influence it.
///
/// One `spin-path-match-<name>` header is added per `:name` capture, the name lower-cased
/// with `_` turned into `-`. Spin collects captures into a map first, so a name captured
/// twice yields one header with the last value. Names that are not valid header names are
/// skipped, as Spin's wasi-http executor drops them.
pub fn spin_headers(
    m: &RouteMatch,
    full_url: &str,
    _base: &str,
    client_addr: SocketAddr,
) -> Vec<(String, String)> {
    let mut headers = vec![
        ("spin-path-info".to_owned(), m.path_info.clone()),
        ("spin-full-url".to_owned(), full_url.to_owned()),
        ("spin-matched-route".to_owned(), m.matched_route.clone()),
        ("spin-base-path".to_owned(), "/".to_owned()),
        (
            "spin-raw-component-route".to_owned(),
            m.raw_component_route.clone(),
        ),
        ("spin-component-route".to_owned(), m.component_route.clone()),
        ("spin-client-addr".to_owned(), client_addr.to_string()),
    ];

    let mut seen: Vec<&str> = Vec::new();
    for (name, _) in &m.params {
        if seen.contains(&name.as_str()) {
            continue;
        }
        seen.push(name);
        // Last value wins, as when Spin collects the captures into a HashMap.
        let value = m
            .params
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let header = format!(
            "spin-path-match-{}",
            name.to_ascii_lowercase().replace('_', "-")
        );
        if is_header_name(&header) {
            headers.push((header, value));
        }
    }
    headers
}

/// RFC 9110 `token`: what `http::HeaderName` accepts (lower-case here already).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(base: &str, routes: &[(&str, &str)]) -> Router {
        Router::build(
            base,
            routes.iter().map(|(c, r)| (c.to_string(), r.to_string())),
        )
        .expect("routes should build")
    }

    fn component(r: &Router, path: &str) -> Option<String> {
        r.route(path).map(|m| m.component_id)
    }

    // --- Ported from spin crates/routes/src/lib.rs `route_tests` ---

    #[test]
    fn exact_routes() {
        let r = router("/", &[("foo", "/foo"), ("foobar", "/foo/bar")]);
        assert_eq!(component(&r, "/foo").as_deref(), Some("foo"));
        assert_eq!(component(&r, "/foo/bar").as_deref(), Some("foobar"));
    }

    #[test]
    fn respects_base() {
        let r = router("/base", &[("foo", "/foo"), ("foobar", "/foo/bar")]);
        assert_eq!(component(&r, "/base/foo").as_deref(), Some("foo"));
        assert_eq!(component(&r, "/base/foo/bar").as_deref(), Some("foobar"));
        assert_eq!(component(&r, "/foo"), None);
    }

    #[test]
    fn root_wildcard_catches_everything() {
        let r = router("/", &[("all", "/...")]);
        for path in ["/foo/bar", "/abc/", "/", "/this/should/be/captured?abc=def"] {
            assert_eq!(component(&r, path).as_deref(), Some("all"), "{path}");
        }
    }

    #[test]
    fn longest_wildcard_prefix_wins_regardless_of_order() {
        let routes = [
            ("one_wildcard", "/one/..."),
            ("onetwo_wildcard", "/one/two/..."),
            ("onetwothree_wildcard", "/one/two/three/..."),
        ];
        let r = router("/", &routes);
        assert_eq!(
            component(&r, "/one/two/three/four").as_deref(),
            Some("onetwothree_wildcard")
        );
        let mut reversed = routes;
        reversed.reverse();
        let r = router("/", &reversed);
        assert_eq!(
            component(&r, "/one/two/three/four").as_deref(),
            Some("onetwothree_wildcard")
        );
        assert_eq!(
            component(&r, "/one/two/x").as_deref(),
            Some("onetwo_wildcard")
        );
        assert_eq!(component(&r, "/one").as_deref(), Some("one_wildcard"));
    }

    #[test]
    fn exact_beats_wildcard() {
        let r = router("/", &[("wildcard", "/..."), ("one_exact", "/one")]);
        assert_eq!(component(&r, "/one").as_deref(), Some("one_exact"));
        assert_eq!(component(&r, "/two").as_deref(), Some("wildcard"));
    }

    #[test]
    fn wildcard_routes_display_as_prefix() {
        let r = router(
            "/",
            &[("comp", "/whee/..."), ("root", "/"), ("all", "/...")],
        );
        let listed: Vec<RouteInfo> = r.routes().collect();
        assert!(listed.contains(&RouteInfo {
            component_id: "comp".into(),
            path: "/whee".into(),
            is_wildcard: true
        }));
        assert!(listed.contains(&RouteInfo {
            component_id: "root".into(),
            path: "/".into(),
            is_wildcard: false
        }));
        assert!(listed.contains(&RouteInfo {
            component_id: "all".into(),
            path: "/".into(),
            is_wildcard: true
        }));
    }

    #[test]
    fn sensible_routes_are_reachable_in_order() {
        let r = router(
            "/",
            &[
                ("comp-/", "/"),
                ("comp-/foo", "/foo"),
                ("comp-/bar", "/bar"),
                ("comp-/whee/...", "/whee/..."),
            ],
        );
        let ids: Vec<String> = r.routes().map(|i| i.component_id).collect();
        assert_eq!(ids, ["comp-/", "comp-/foo", "comp-/bar", "comp-/whee/..."]);
        assert!(r.duplicates().is_empty());
    }

    #[test]
    fn duplicate_routes_last_one_wins_in_first_position() {
        let r = router(
            "/",
            &[
                ("comp-/", "/"),
                ("comp-first /foo", "/foo"),
                ("comp-second /foo", "/foo"),
                ("comp-/whee/...", "/whee/..."),
            ],
        );
        assert_eq!(r.routes().count(), 3);
        assert_eq!(r.routes().nth(1).unwrap().component_id, "comp-second /foo");
        assert_eq!(component(&r, "/foo").as_deref(), Some("comp-second /foo"));
        assert_eq!(
            r.duplicates(),
            [DuplicateRoute {
                route: "/foo".into(),
                replaced_id: "comp-first /foo".into(),
                effective_id: "comp-second /foo".into(),
            }]
        );
    }

    #[test]
    fn duplicate_routes_reporting_is_faithful() {
        let r = router(
            "/",
            &[
                ("comp-first /", "/"),
                ("comp-second /", "/"),
                ("comp-first /foo", "/foo"),
                ("comp-second /foo", "/foo"),
                ("comp-first /...", "/..."),
                ("comp-second /...", "/..."),
                ("comp-first /whee/...", "/whee/..."),
                ("comp-second /whee/...", "/whee/..."),
            ],
        );
        let reported: Vec<(&str, &str)> = r
            .duplicates()
            .iter()
            .map(|d| (d.replaced_id.as_str(), d.route.as_str()))
            .collect();
        assert_eq!(
            reported,
            [
                ("comp-first /", "/"),
                ("comp-first /foo", "/foo"),
                ("comp-first /...", "/..."),
                ("comp-first /whee/...", "/whee/..."),
            ]
        );
    }

    #[test]
    fn trailing_wildcard_is_captured() {
        let r = router("/", &[("comp", "/...")]);
        assert_eq!(r.route("/1/2/3").unwrap().path_info, "/1/2/3");
        let r = router("/", &[("comp", "/1/...")]);
        assert_eq!(r.route("/1/2/3").unwrap().path_info, "/2/3");
    }

    #[test]
    fn trailing_wildcard_respects_trailing_slash() {
        let r = router("/", &[("comp", "/test/...")]);
        assert_eq!(r.route("/test").unwrap().path_info, "");
        assert_eq!(r.route("/test/").unwrap().path_info, "/");
        assert_eq!(r.route("/test/hello").unwrap().path_info, "/hello");
        assert_eq!(r.route("/test/hello/").unwrap().path_info, "/hello/");
    }

    #[test]
    fn named_wildcard_is_captured() {
        let r = router("/", &[("comp", "/1/:two/3")]);
        assert_eq!(
            r.route("/1/2/3").unwrap().params,
            [("two".to_string(), "2".to_string())]
        );
        let r = router("/", &[("comp", "/1/:two/...")]);
        let m = r.route("/1/2/3").unwrap();
        assert_eq!(m.params, [("two".to_string(), "2".to_string())]);
        assert_eq!(m.path_info, "/3");
    }

    #[test]
    fn reserved_routes_are_reserved() {
        assert!(router("/", &[("c", "/.well-known/spin/...")]).contains_reserved_route());
        assert!(router("/", &[("c", "/.well-known/spin/fie")]).contains_reserved_route());
        assert!(!router("/", &[("c", "/.well-known/spindle/...")]).contains_reserved_route());
        assert!(!router("/", &[("c", "/.well-known/spi/...")]).contains_reserved_route());
        assert!(!router("/", &[("c", "/.well-known/spin")]).contains_reserved_route());
    }

    // --- Precedence, per routefinder's ordering (`Exact > Param > Wildcard`, compared
    // segment by segment; see routefinder 0.5.4 `Router::best_match` docs) ---

    #[test]
    fn precedence_table() {
        let r = router(
            "/",
            &[
                ("catch-all", "/..."),
                ("root", "/"),
                ("user-any", "/users/:id"),
                ("user-me", "/users/me"),
                ("users-wild", "/users/..."),
                ("user-posts", "/users/:id/posts"),
                ("user-files", "/users/:id/files/..."),
                ("static-wild", "/static/..."),
                ("static-img", "/static/img/..."),
            ],
        );
        let cases = [
            ("/", "root"),
            ("/nope", "catch-all"),
            ("/a/b/c", "catch-all"),
            ("/users", "users-wild"),
            ("/users/", "users-wild"),
            ("/users/me", "user-me"),
            ("/users/me/", "user-me"),
            ("/users/42", "user-any"),
            ("/users/42/posts", "user-posts"),
            ("/users/me/posts", "user-posts"),
            ("/users/42/other", "users-wild"),
            ("/users/42/files", "user-files"),
            ("/users/42/files/a/b.txt", "user-files"),
            ("/static/app.js", "static-wild"),
            ("/static/img/logo.png", "static-img"),
            ("/static/img", "static-img"),
            ("/staticfoo", "catch-all"),
        ];
        for (path, expected) in cases {
            assert_eq!(
                component(&r, path).as_deref(),
                Some(expected),
                "path {path}"
            );
        }
        let m = r.route("/users/42/files/a/b.txt").unwrap();
        assert_eq!(m.params, [("id".to_string(), "42".to_string())]);
        assert_eq!(m.path_info, "/a/b.txt");
    }

    #[test]
    fn no_match_without_catch_all() {
        let r = router("/", &[("foo", "/foo"), ("param", "/p/:x"), ("w", "/w/...")]);
        assert_eq!(component(&r, "/"), None);
        assert_eq!(component(&r, "/foobar"), None);
        assert_eq!(component(&r, "/foo/bar"), None);
        // A parameter never matches an empty segment at the end of the path.
        assert_eq!(component(&r, "/p"), None);
        assert_eq!(component(&r, "/p/"), None);
        assert_eq!(component(&r, "/p/a/b"), None);
        assert_eq!(component(&r, "/wx"), None);
        // The wildcard also matches its bare prefix.
        assert_eq!(component(&r, "/w").as_deref(), Some("w"));
    }

    #[test]
    fn trailing_slashes_are_ignored_for_matching() {
        // Spin sanitises one trailing slash off the route, and routefinder trims trailing
        // slashes off the path, so `/foo`, `/foo/` routes and paths are interchangeable.
        let r = router("/", &[("slash", "/foo/")]);
        assert_eq!(component(&r, "/foo").as_deref(), Some("slash"));
        assert_eq!(component(&r, "/foo/").as_deref(), Some("slash"));
        let m = r.route("/foo").unwrap();
        assert_eq!(m.matched_route, "/foo");
        assert_eq!(m.raw_component_route, "/foo/");
        assert_eq!(m.component_route, "/foo/");
        assert_eq!(m.path_info, "");

        // `/foo` and `/foo/` are different raw routes, so not duplicates: both are kept and
        // the first declared wins because they are equally specific.
        let r = router("/", &[("a", "/foo"), ("b", "/foo/")]);
        assert!(r.duplicates().is_empty());
        assert_eq!(r.routes().count(), 2);
        assert_eq!(component(&r, "/foo/").as_deref(), Some("a"));
    }

    #[test]
    fn equally_specific_routes_first_declared_wins() {
        let r = router("/", &[("first", "/items/:a"), ("second", "/items/:b")]);
        let m = r.route("/items/7").unwrap();
        assert_eq!(m.component_id, "first");
        assert_eq!(m.params, [("a".to_string(), "7".to_string())]);
    }

    #[test]
    fn relative_routes_are_absolutised() {
        let r = router("/", &[("rel", "foo/...")]);
        let m = r.route("/foo/x").unwrap();
        assert_eq!(m.matched_route, "/foo/...");
        assert_eq!(m.raw_component_route, "foo/...");
        assert_eq!(m.component_route, "foo");
    }

    #[test]
    fn star_suffix_is_a_wildcard_too() {
        let r = router("/", &[("star", "/files/*")]);
        let m = r.route("/files/a/b").unwrap();
        assert_eq!(m.component_id, "star");
        assert_eq!(m.path_info, "/a/b");
        // Only `/...` is stripped for spin-component-route.
        assert_eq!(m.component_route, "/files/*");
    }

    #[test]
    fn root_route_match_values() {
        let r = router("/", &[("root", "/")]);
        let m = r.route("/").unwrap();
        // sanitize_with_base("/", "/") == "" in Spin.
        assert_eq!(m.matched_route, "");
        assert_eq!(m.raw_component_route, "/");
        assert_eq!(m.component_route, "/");
        assert_eq!(m.path_info, "");

        let r = router("/", &[("all", "/...")]);
        let m = r.route("/").unwrap();
        assert_eq!(m.matched_route, "/...");
        assert_eq!(m.component_route, "");
        assert_eq!(m.path_info, "/");
    }

    #[test]
    fn invalid_routes_are_errors() {
        for bad in ["/:", "/foo/*name", "/*/x", "/a/*.json"] {
            let err = Router::build("/", [("comp".to_string(), bad.to_string())])
                .expect_err(bad)
                .to_string();
            assert!(err.contains("associated with component comp"), "{err}");
        }
    }

    // --- Headers, ported from spin crates/trigger-http/src/headers.rs tests ---

    fn client() -> SocketAddr {
        "127.0.0.1:8777".parse().unwrap()
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn default_headers() {
        let r = router("/", &[("DUMMY", "/foo/...")]);
        let m = r.route("/foo/bar").unwrap();
        let h = spin_headers(
            &m,
            "https://fermyon.dev/foo/bar?key1=value1&key2=value2",
            "/",
            client(),
        );
        let names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "spin-path-info",
                "spin-full-url",
                "spin-matched-route",
                "spin-base-path",
                "spin-raw-component-route",
                "spin-component-route",
                "spin-client-addr",
            ]
        );
        assert_eq!(
            header(&h, "spin-full-url"),
            Some("https://fermyon.dev/foo/bar?key1=value1&key2=value2")
        );
        assert_eq!(header(&h, "spin-path-info"), Some("/bar"));
        assert_eq!(header(&h, "spin-matched-route"), Some("/foo/..."));
        assert_eq!(header(&h, "spin-base-path"), Some("/"));
        assert_eq!(header(&h, "spin-raw-component-route"), Some("/foo/..."));
        assert_eq!(header(&h, "spin-component-route"), Some("/foo"));
        assert_eq!(header(&h, "spin-client-addr"), Some("127.0.0.1:8777"));
    }

    #[test]
    fn default_headers_with_named_wildcards() {
        let r = router("/", &[("DUMMY", "/foo/:userid/...")]);
        let m = r.route("/foo/42/bar").unwrap();
        let h = spin_headers(
            &m,
            "https://fermyon.dev/foo/42/bar?key1=value1&key2=value2",
            "/",
            client(),
        );
        assert_eq!(header(&h, "spin-path-info"), Some("/bar"));
        assert_eq!(header(&h, "spin-matched-route"), Some("/foo/:userid/..."));
        assert_eq!(
            header(&h, "spin-raw-component-route"),
            Some("/foo/:userid/...")
        );
        assert_eq!(header(&h, "spin-component-route"), Some("/foo/:userid"));
        assert_eq!(header(&h, "spin-path-match-userid"), Some("42"));
        assert_eq!(h.len(), 8);
    }

    #[test]
    fn param_header_names() {
        let r = router("/", &[("c", "/:user_ID/:x/:x")]);
        let m = r.route("/u/1/2").unwrap();
        let h = spin_headers(&m, "http://localhost/u/1/2", "/", client());
        assert_eq!(header(&h, "spin-path-match-user-id"), Some("u"));
        // Captured twice: one header, last value.
        assert_eq!(
            h.iter().filter(|(n, _)| n == "spin-path-match-x").count(),
            1
        );
        assert_eq!(header(&h, "spin-path-match-x"), Some("2"));
    }

    #[test]
    fn base_path_header_is_always_root() {
        let r = router("/base", &[("c", "/foo")]);
        let m = r.route("/base/foo").unwrap();
        assert_eq!(m.matched_route, "/base/foo");
        assert_eq!(m.raw_component_route, "/foo");
        let h = spin_headers(&m, "http://localhost/base/foo", "/base", client());
        assert_eq!(header(&h, "spin-base-path"), Some("/"));
    }
}
