//! Unsigned parts of a signed request must not change what runs: Aliyun V3 deciding headers
//! replaced or repeated after signing, and Huawei absolute-form targets naming another store
//! than the Host. Control byte 3 bit 7 picks the dialect; see `kvmux_fuzz::overrides`.
#![no_main]

use std::sync::OnceLock;

use kv_huawei::HuaweiDialect;
use kvmux_fuzz::dialects::DialectHarness;
use kvmux_fuzz::overrides::{aliyun_v3_override, huawei_foreign_authority};
use kvmux_fuzz::Control;
use libfuzzer_sys::fuzz_target;

fn huawei() -> &'static DialectHarness<HuaweiDialect> {
    static HARNESS: OnceLock<DialectHarness<HuaweiDialect>> = OnceLock::new();
    HARNESS.get_or_init(|| {
        DialectHarness::new("HWkvmuxdev", &[(501, "KVS.00000002")], HuaweiDialect::new)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((control, raw)) = Control::split(data) else {
        return;
    };
    if control.flags & 0x80 == 0 {
        aliyun_v3_override(control, raw);
    } else {
        huawei_foreign_authority(huawei(), control.mutate_at, raw);
    }
});
