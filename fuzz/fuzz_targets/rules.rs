//! Alert rule files (`alerts.d/*.toml`): any text is read into rules or refused with a
//! path:line message, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = carbonhound::alert::parse_rules(std::path::Path::new("fuzz.toml"), text, 64);
    }
});
