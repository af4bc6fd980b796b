//! The answer of a remote Graphite's `/render?format=json` (alerting's remote mode): any bytes
//! are read into series or refused with a reason, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = carbonhound::alert::parse_render_json(data, 1_700_000_000, 1_700_003_600);
});
