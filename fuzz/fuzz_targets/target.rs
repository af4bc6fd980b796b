//! The target language parser: any text parses or is refused, never panics, within the
//! nesting limit.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = carbonhound::query::parse_target(text, 64);
    }
});
