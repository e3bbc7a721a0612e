//! Embeds the web app's build output (`web/dist`, made by `npm run build` in `web/`) in the
//! component: one table entry per file, with its precompressed `.br` / `.gz` siblings when the
//! build wrote them. Without `web/dist` the table is empty and the component answers 503
//! (`web_app_not_built`), so a Rust-only build of the workspace still compiles.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let dist = std::env::var("STREAMGATE_WEB_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest_dir.join("../../web/dist"));
    println!("cargo:rerun-if-env-changed=STREAMGATE_WEB_DIST");
    println!("cargo:rerun-if-changed={}", dist.display());

    let mut files = Vec::new();
    if dist.is_dir() {
        walk(&dist, &mut files);
    } else {
        println!(
            "cargo:warning=web: {} does not exist (run `npm ci --ignore-scripts && npm run build` in web/); the component will answer 503",
            dist.display()
        );
    }
    files.sort();
    let set: BTreeMap<String, PathBuf> = files
        .iter()
        .map(|f| (url_path(&dist, f), f.clone()))
        .collect();

    let mut out = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (url, file) in &set {
        if url.ends_with(".br") || url.ends_with(".gz") {
            continue;
        }
        let bytes = std::fs::read(file).unwrap();
        let mut hasher = std::hash::DefaultHasher::new();
        bytes.hash(&mut hasher);
        let variant = |ext: &str| match set.get(&format!("{url}.{ext}")) {
            Some(p) => format!("Some(include_bytes!({:?}))", p.canonicalize().unwrap()),
            None => "None".to_string(),
        };
        writeln!(
            out,
            "    Asset {{ path: {url:?}, content_type: {:?}, etag: \"\\\"{:016x}\\\"\", body: include_bytes!({:?}), br: {}, gzip: {} }},",
            content_type(url),
            hasher.finish(),
            file.canonicalize().unwrap(),
            variant("br"),
            variant("gz"),
        )
        .unwrap();
    }
    out.push_str("];\n");
    let out_file = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("assets.rs");
    std::fs::write(out_file, out).unwrap();
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        println!("cargo:rerun-if-changed={}", path.display());
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push(path);
        }
    }
}

fn url_path(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap();
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    format!("/{}", parts.join("/"))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webmanifest" => "application/manifest+json",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}
