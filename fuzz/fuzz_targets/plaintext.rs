//! Carbon plaintext: any bytes split into lines and parsed never panic, and a parsed line
//! holds a finite value and a name the store can place.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    carbonhound::carbon::for_each_line(data, |line| {
        if let Ok(l) = carbonhound::carbon::parse_line(line) {
            assert!(l.value.is_finite());
            assert!(!l.name.is_empty());
        }
    });
});
