//! PostgreSQL for tests: the server given by `KV_TEST_POSTGRES=postgres://...`, or a throwaway
//! one started by `scripts/postgres.sh`; each test in a schema of its own. Shared by the engine's
//! test binaries (kv-core) and the multi-gateway end-to-end tests (kvmux).

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

/// `scripts/postgres.sh`, which installs PostgreSQL from Debian if absent and runs throwaway
/// servers as an unprivileged user on free 127.0.0.1 ports.
pub const POSTGRES_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/postgres.sh");

/// A throwaway PostgreSQL (`command` = `start`, or `start-ha` for a primary and two synchronous
/// replicas) in a fresh directory; returns the directory and the `postgres://` URLs printed. A
/// watcher in its own session stops the servers by PID once this test process is gone, so a
/// failing test cannot leave them running.
pub fn start_postgres(command: &str, prefix: &str) -> (std::path::PathBuf, Vec<String>) {
    use std::process::{Command, Stdio};
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp dir")
        .keep();
    let out = Command::new("bash")
        .arg(POSTGRES_SCRIPT)
        .arg(command)
        .arg(&dir)
        .output()
        .expect("running scripts/postgres.sh");
    assert!(
        out.status.success(),
        "scripts/postgres.sh {command} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[allow(clippy::zombie_processes)]
    Command::new("setsid")
        .arg("bash")
        .arg("-c")
        .arg(r#"while kill -0 "$1" 2>/dev/null; do sleep 0.5; done; bash "$2" stop "$3""#)
        .arg("watcher")
        .arg(std::process::id().to_string())
        .arg(POSTGRES_SCRIPT)
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning the server watcher");
    let urls = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("postgres://"))
        .map(String::from)
        .collect();
    (dir, urls)
}

/// The server for this test binary: `KV_TEST_POSTGRES` when set, else one started for it.
pub fn server_url() -> &'static str {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        postgres_url().unwrap_or_else(|| {
            let (_, urls) = start_postgres("start", "kv-pg-test");
            urls.last()
                .cloned()
                .expect("scripts/postgres.sh printed no URL")
        })
    })
}
