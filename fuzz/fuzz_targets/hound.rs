//! A Hound `config.json` (`carbonhound alerts import-hound`): any text is turned into a rule
//! file and settings or refused naming the alert and key, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = carbonhound::alert::import_hound(text, "config.json", 64);
    }
});
