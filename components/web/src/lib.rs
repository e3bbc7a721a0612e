//! The web app: serves the static build of `web/` (embedded at build time by `build.rs`).
//!
//! - `/assets/*` are fingerprinted by the build: `cache-control: public, max-age=31536000,
//!   immutable`.
//! - `/`, `/watch/<id>`, `/studio`, `/browse` (the app's own routes) answer `index.html` with
//!   `no-cache` and an `ETag`, so a browser revalidates it and picks up a new build at once.
//! - Brotli or gzip, precompressed by the build, when the client's `Accept-Encoding` takes it.
//! - A strict Content-Security-Policy: scripts and styles from this origin only (none inline),
//!   network, media and images from this origin, `stream_base_url` and `media_base_url` (the
//!   player fetches playlists and segments there; `blob:` media is hls.js's MediaSource).
//! - This component holds the catch-all route, so any other path answers what the host answers
//!   when no route matches: the JSON 404 `{"error", "code": "not_found"}` (tests/host-tests routing).

use spin_sdk::http::{Method, Request, Response};
use spin_sdk::{http_component, variables};

pub struct Asset {
    path: &'static str,
    content_type: &'static str,
    etag: &'static str,
    body: &'static [u8],
    br: Option<&'static [u8]>,
    gzip: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

#[http_component]
fn handle(req: Request) -> Response {
    let path = req.path().to_string();
    let head = match req.method() {
        Method::Get => false,
        Method::Head => true,
        _ => {
            let mut r = json(405, "method_not_allowed", "Use GET.");
            r.set_header("allow", "GET, HEAD");
            return r;
        }
    };
    if path == "/config.json" {
        return app_config(head, &Settings::load());
    }
    if ASSETS.is_empty() {
        return json(
            503,
            "web_app_not_built",
            "The web app was not built into this component (npm run build in web/, then build the component).",
        );
    }
    let (asset, cache) = if let Some(a) = ASSETS.iter().find(|a| a.path == path) {
        let cache = if a.path.starts_with("/assets/") {
            IMMUTABLE
        } else {
            "no-cache"
        };
        (a, cache)
    } else if is_app_route(&path) {
        match ASSETS.iter().find(|a| a.path == "/index.html") {
            Some(a) => (a, "no-cache"),
            None => return json(503, "web_app_not_built", "index.html is missing."),
        }
    } else {
        return json(404, "not_found", "No route matches this path.");
    };

    let csp = content_security_policy(&Settings::load());
    if header(&req, "if-none-match").is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag)) {
        return Response::builder()
            .status(304)
            .header("etag", asset.etag)
            .header("cache-control", cache)
            .header("vary", "accept-encoding")
            .build();
    }
    let accept = header(&req, "accept-encoding").unwrap_or_default();
    let (body, encoding) = match (asset.br, asset.gzip) {
        (Some(br), _) if accepts(&accept, "br") => (br, Some("br")),
        (_, Some(gz)) if accepts(&accept, "gzip") => (gz, Some("gzip")),
        _ => (asset.body, None),
    };
    let mut builder = Response::builder();
    builder
        .status(200)
        .header("content-type", asset.content_type)
        .header("cache-control", cache)
        .header("etag", asset.etag)
        .header("vary", "accept-encoding")
        .header("content-length", body.len().to_string());
    if let Some(e) = encoding {
        builder.header("content-encoding", e);
    }
    security_headers(&mut builder, &csp);
    if head {
        builder.build()
    } else {
        builder.body(body.to_vec()).build()
    }
}

/// The front end's own routes, all answered by `index.html`.
fn is_app_route(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    if matches!(path, "" | "/studio" | "/browse") {
        return true;
    }
    match path.strip_prefix("/watch/") {
        Some(id) => {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
        None => false,
    }
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.header(name)
        .and_then(|v| v.as_str())
        .map(|s| s.to_string())
}

/// Whether `Accept-Encoding` takes `coding` (named, not with `q=0`). `*` counts.
fn accepts(accept: &str, coding: &str) -> bool {
    accept.split(',').any(|item| {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        if !(name.eq_ignore_ascii_case(coding) || name == "*") {
            return false;
        }
        !parts.any(|p| {
            let p = p.trim();
            p.len() > 2
                && p[..2].eq_ignore_ascii_case("q=")
                && p[2..].trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
        })
    })
}

/// What this component reads of the deployment, once per request. Nothing here is required:
/// a value that is unavailable or malformed is left out (the page works without it).
#[derive(Debug, Default, PartialEq)]
struct Settings {
    /// The origin of `media_base_url`.
    media_origin: Option<String>,
    /// The origin of `stream_base_url`.
    stream_origin: Option<String>,
    /// The chain ids of `chain_rpc_urls`.
    chain_ids: Vec<u64>,
}

impl Settings {
    fn load() -> Settings {
        Settings::from(|name| variables::get(name).ok())
    }

    fn from(get: impl Fn(&str) -> Option<String>) -> Settings {
        Settings {
            media_origin: get("media_base_url").and_then(|v| origin_of(&v)),
            stream_origin: get("stream_base_url").and_then(|v| origin_of(&v)),
            chain_ids: get("chain_rpc_urls")
                .map(|v| chain_ids(&v))
                .unwrap_or_default(),
        }
    }
}

/// `scheme://host[:port]` of a configured URL, or `None` when it is not a plain http(s) URL
/// (so nothing odd ever reaches the policy).
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty()
        || !authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
    {
        return None;
    }
    Some(format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

fn content_security_policy(settings: &Settings) -> String {
    let mut others = String::new();
    for o in [&settings.media_origin, &settings.stream_origin]
        .into_iter()
        .flatten()
    {
        if !others.contains(o.as_str()) {
            others.push(' ');
            others.push_str(o);
        }
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{others}; \
         media-src 'self' blob:{others}; connect-src 'self'{others}; \
         manifest-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
}

fn security_headers(builder: &mut spin_sdk::http::ResponseBuilder, csp: &str) {
    builder
        .header("content-security-policy", csp)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "strict-origin-when-cross-origin")
        .header("cross-origin-opener-policy", "same-origin")
        .header(
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        );
}

/// What the front end needs to know about this deployment: the chains it accepts for sign-in
/// (the ids of `chain_rpc_urls` only: the RPC URLs may carry keys) and the media origin.
fn app_config(head: bool, settings: &Settings) -> Response {
    let media = settings.media_origin.as_deref().unwrap_or_default();
    let ids: Vec<String> = settings.chain_ids.iter().map(|c| c.to_string()).collect();
    let body = format!(
        r#"{{"chains":[{}],"media_base_url":"{media}"}}"#,
        ids.join(",")
    );
    let mut builder = Response::builder();
    builder
        .status(200)
        .header("content-type", "application/json")
        .header("cache-control", "no-cache");
    if head {
        builder.build()
    } else {
        builder.body(body).build()
    }
}

/// The chain ids of `chain_rpc_urls` (`<id>=<url>` pairs, comma-separated), in order, once each.
fn chain_ids(value: &str) -> Vec<u64> {
    let mut ids = Vec::new();
    for pair in value.split(',') {
        if let Some(id) = pair
            .split_once('=')
            .and_then(|(id, _)| id.trim().parse::<u64>().ok())
        {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

fn json(status: u16, code: &str, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(format!(r#"{{"error":"{message}","code":"{code}"}}"#))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_routes() {
        for p in ["/", "/studio", "/browse", "/watch/abc-123_X", "/watch/abc/"] {
            assert!(is_app_route(p), "{p}");
        }
        for p in [
            "/watch/",
            "/watch/a/b",
            "/favicon.ico",
            "/studio/x",
            "/watch/a%2f",
        ] {
            assert!(!is_app_route(p), "{p}");
        }
    }

    #[test]
    fn accept_encoding() {
        assert!(accepts("gzip, deflate, br, zstd", "br"));
        assert!(accepts("gzip;q=0.5", "gzip"));
        assert!(!accepts("gzip;q=0", "gzip"));
        assert!(!accepts("gzip; q=0.000", "gzip"));
        assert!(accepts("*", "br"));
        assert!(!accepts("identity", "gzip"));
    }

    #[test]
    fn chains() {
        assert_eq!(
            chain_ids("31337=http://127.0.0.1:8545, 1=https://x.example/key?k=1,31337=http://y"),
            vec![31337, 1]
        );
        assert!(chain_ids("").is_empty());
    }

    #[test]
    fn settings_leave_out_what_is_unavailable_or_malformed() {
        let vars = |name: &str| match name {
            "media_base_url" => Some("http://127.0.0.1:3001/media".to_string()),
            "stream_base_url" => Some("javascript:alert(1)".to_string()),
            _ => None,
        };
        assert_eq!(
            Settings::from(vars),
            Settings {
                media_origin: Some("http://127.0.0.1:3001".into()),
                stream_origin: None,
                chain_ids: vec![],
            }
        );
        assert_eq!(Settings::from(|_| None), Settings::default());
        let csp = content_security_policy(&Settings {
            media_origin: Some("http://a:1".into()),
            stream_origin: Some("http://a:1".into()),
            chain_ids: vec![1],
        });
        assert!(csp.contains("connect-src 'self' http://a:1;"), "{csp}");
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("http://127.0.0.1:3001/media").as_deref(),
            Some("http://127.0.0.1:3001")
        );
        assert_eq!(
            origin_of("https://Media.Example.com").as_deref(),
            Some("https://media.example.com")
        );
        assert_eq!(origin_of("ftp://x"), None);
        assert_eq!(origin_of("http://a b; script-src *"), None);
        assert_eq!(origin_of("http://"), None);
    }
}
