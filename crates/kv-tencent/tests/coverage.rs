//! docs/COVERAGE.md's Tencent section must list exactly the router's operations, each with a
//! valid status, so the page cannot drift from the code.

use kv_tencent::router::Operation;

#[test]
fn coverage_table_matches_the_router() {
    // | `Action` | status | notes |
    kv_testkit::assert_coverage_lists("tencent", 2, Operation::ALL.iter().map(|op| op.name()));
}
