//! Spin's `crates/manifest/src/compat`: the deprecated `allowed_http_hosts`.

/// The deprecated `allowed_http_hosts` in `allowed_outbound_hosts` syntax
/// (crates/manifest/src/compat: `convert_allowed_http_to_allowed_hosts`, without database
/// access, which only applies to v1 manifests).
pub(super) fn convert_allowed_http_hosts(hosts: &[String]) -> Result<Vec<String>, String> {
    if hosts.iter().any(|h| h == "insecure:allow-all") {
        return Ok(vec![
            "http://*:*".into(),
            "https://*:*".into(),
            "http://self".into(),
        ]);
    }
    let mut converted = Vec::new();
    let mut errors = Vec::new();
    for text in hosts {
        match parse_allowed_http_host(text) {
            Ok((domain, _)) if domain == "self" => converted.push("http://self".into()),
            Ok((domain, port)) => {
                let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                converted.push(format!("http://{domain}{port}"));
                converted.push(format!("https://{domain}{port}"));
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(converted)
    } else {
        Err(format!(
            "One or more allowed_http_hosts entries was invalid:\n{}",
            errors.join("\n")
        ))
    }
}

/// An `allowed_http_hosts` entry: `host`, `host:port` or `http(s)://host[:port][/]`.
fn parse_allowed_http_host(text: &str) -> Result<(String, Option<u16>), String> {
    // `Url::parse("localhost:3001")` would read `localhost` as a scheme, so only strings
    // containing `//` are parsed as URLs; the rest get an `http://` prefix first.
    let url = if text.contains("//") {
        let url = url::Url::parse(text)
            .map_err(|e| format!("{text} isn't a valid HTTP host URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{text} isn't a valid host or host:port string"));
        }
        url
    } else {
        url::Url::parse(&format!("http://{text}"))
            .map_err(|_| format!("{text} isn't a valid host or host:port string"))?
    };
    let host = url
        .host_str()
        .ok_or_else(|| format!("{text} doesn't contain a host name"))?;
    if url.path().len() > 1 {
        return Err(format!(
            "{text} contains a path, should be host and optional port only"
        ));
    }
    Ok((host.to_owned(), url.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_http_hosts_conversion() {
        assert_eq!(
            convert_allowed_http_hosts(&["insecure:allow-all".into(), "x".into()]).unwrap(),
            ["http://*:*", "https://*:*", "http://self"]
        );
        assert_eq!(
            convert_allowed_http_hosts(&[
                "spin.fermyon.dev".into(),
                "https://example.com:443".into(),
                "http://localhost:3001/".into(),
            ])
            .unwrap(),
            [
                "http://spin.fermyon.dev",
                "https://spin.fermyon.dev",
                "http://example.com",
                "https://example.com",
                "http://localhost:3001",
                "https://localhost:3001",
            ]
        );
        let err = convert_allowed_http_hosts(&["example.com/path".into()]).unwrap_err();
        assert!(err.contains("contains a path"), "{err}");
        let err = convert_allowed_http_hosts(&["ftp://example.com".into()]).unwrap_err();
        assert!(
            err.contains("isn't a valid host or host:port string"),
            "{err}"
        );
    }
}
