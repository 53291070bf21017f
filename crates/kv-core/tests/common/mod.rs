//! Backend selection shared by the engine-level test binaries: redb by default,
//! PostgreSQL when `KV_TEST_POSTGRES=postgres://...` is set (each test in a schema of its own).

#![allow(dead_code)]

/// The PostgreSQL server URL to run against, when one is given.
pub fn postgres_url() -> Option<String> {
    std::env::var("KV_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
}

/// `url` with `options=-c search_path=<schema>` added, so the store creates and uses that schema.
pub fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{schema}")
}

/// A schema name no other run has used: `<tag>_<pid>_<nanos>`.
pub fn fresh_schema(tag: &str) -> String {
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{tag}_{}_{unique}", std::process::id())
}
