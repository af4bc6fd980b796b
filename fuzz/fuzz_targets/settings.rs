//! carbonhound.toml: any text over the embedded defaults is read into settings or refused
//! with a message naming the key, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = carbonhound::config::Settings::from_toml(text, std::path::Path::new("fuzz.toml"));
    }
});
