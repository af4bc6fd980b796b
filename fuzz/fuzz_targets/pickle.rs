//! Carbon pickle frames: the safe decoder never panics on any frame, and every entry of a
//! decoded list is either a point or a refusal.
#![no_main]
use carbonhound::carbon::{decode_list, pickle_entry, PickleEntry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = carbonhound::carbon::decode(data);
    if let Ok(pickle) = decode_list(data) {
        for item in pickle.items(&pickle.root).unwrap_or(&[]) {
            if let PickleEntry::Point { value, .. } = pickle_entry(&pickle, item) {
                assert!(value.is_finite());
            }
        }
    }
});
