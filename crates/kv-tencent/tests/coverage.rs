//! docs/COVERAGE.md's Tencent section must list exactly the router's operations, each with a
//! valid status, so the page cannot drift from the code.

use std::collections::BTreeSet;
use std::path::PathBuf;

use kv_tencent::router::Operation;

/// `(action, status)` for every table row between the tencent markers.
fn documented() -> Vec<(String, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/COVERAGE.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let begin = text
        .find("<!-- tencent:begin -->")
        .expect("tencent:begin marker");
    let end = text
        .find("<!-- tencent:end -->")
        .expect("tencent:end marker");
    assert!(begin < end, "markers out of order");
    text[begin..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            // ["", "`Action`", "status", "notes", ""]
            let action = cells
                .get(1)
                .expect("action cell")
                .trim_matches('`')
                .to_string();
            let status = cells.get(2).expect("status cell").to_string();
            (action, status)
        })
        .collect()
}

#[test]
fn coverage_table_matches_the_router() {
    let rows = documented();
    let listed: BTreeSet<String> = rows.iter().map(|(a, _)| a.clone()).collect();
    assert_eq!(listed.len(), rows.len(), "an action is listed twice");
    let served: BTreeSet<String> = Operation::ALL
        .iter()
        .map(|op| op.name().to_string())
        .collect();
    assert_eq!(listed, served);
    for (action, status) in &rows {
        assert!(
            ["full", "partial", "none"].contains(&status.as_str()),
            "{action}: unknown status {status}"
        );
        assert!(
            Operation::from_action(action).is_some(),
            "{action} is not routed"
        );
    }
}
