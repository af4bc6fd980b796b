//! graphite-web's time references (`from`/`until`): any text in several zones and around
//! several "now"s is parsed or refused, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for tz in [
            chrono_tz::Tz::UTC,
            chrono_tz::Tz::Europe__Paris,
            chrono_tz::Tz::America__New_York,
        ] {
            for now in [0, 1_700_000_000, 4_102_444_800] {
                let _ = carbonhound::query::parse_at_time(text, &tz, now);
            }
        }
    }
});
