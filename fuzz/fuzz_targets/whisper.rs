//! The whisper reader on arbitrary files: the header parser and, for bytes it accepts, opening
//! the file and fetching every archive never panic (a corrupt file is an error).
#![no_main]
use std::path::PathBuf;

use carbonhound::whisper::{Header, WhisperFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = PathBuf::from(format!("/tmp/carbonhound-fuzz-{}.wsp", std::process::id()));
    let Ok(Some(header)) = Header::parse(data, data.len() as u64, &path) else {
        return;
    };
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(file) = WhisperFile::open(&path) {
        let now = 1_700_000_000;
        for archive in &header.archives {
            let _ = file.fetch(now - archive.retention(), Some(now), now, None);
            let _ = file.archive_fetch(archive, now - 3600, now);
        }
    }
    let _ = std::fs::remove_file(&path);
});
