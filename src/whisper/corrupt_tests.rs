//! Corrupt, truncated and garbled files: every entry point answers with an error (or, for a
//! header that still parses, some answer) and never panics; a file refused at open is left
//! byte for byte as it was. Thousands of deterministic random cases, no external crates.

use std::path::Path;

use super::header::{ARCHIVE_INFO_SIZE, METADATA_SIZE};
use super::*;

/// splitmix64: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const NOW: i64 = 1_600_000_000;

fn valid_file(dir: &Path, rng: &mut Rng, n: usize) -> Vec<u8> {
    let shapes: [&[(u32, u32)]; 4] = [
        &[(60, 10)],
        &[(1, 20), (5, 12)],
        &[(10, 6), (30, 4), (120, 5)],
        &[(60, 30), (300, 24), (3600, 10)],
    ];
    let shape: Vec<Retention> = rng
        .pick(&shapes)
        .iter()
        .map(|&(s, p)| Retention {
            seconds_per_point: s,
            points: p,
        })
        .collect();
    let path = dir.join(format!("valid{n}.wsp"));
    let method = AggregationMethod::ALL[rng.below(8) as usize];
    create(
        &path,
        &shape,
        CreateOptions {
            x_files_factor: 0.5,
            aggregation_method: method,
            preallocation: Preallocation::Sparse,
        },
    )
    .unwrap();
    let mut f = WhisperFile::open_rw(&path).unwrap();
    let max = f.header().max_retention as i64;
    let points: Vec<Point> = (0..rng.below(50))
        .map(|_| {
            (
                NOW - rng.below(max as u64 + 10) as i64,
                rng.below(100) as f64,
            )
        })
        .collect();
    f.update_many(&points, NOW).unwrap();
    std::fs::read(&path).unwrap()
}

fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    let header_fields = METADATA_SIZE + ARCHIVE_INFO_SIZE * 3;
    match rng.below(8) {
        // Truncate anywhere.
        0 => {
            let n = rng.below(bytes.len() as u64 + 1) as usize;
            bytes.truncate(n);
        }
        // Flip a few random bytes, mostly in the header.
        1 => {
            for _ in 0..1 + rng.below(4) {
                if bytes.is_empty() {
                    break;
                }
                let limit = if rng.below(4) == 0 {
                    bytes.len()
                } else {
                    header_fields.min(bytes.len())
                };
                let i = rng.below(limit as u64) as usize;
                bytes[i] ^= 1 << rng.below(8);
            }
        }
        // Overwrite one header field with a random or extreme u32.
        2 | 3 => {
            let fields = (bytes.len().min(header_fields)) / 4;
            if fields > 0 {
                let i = rng.below(fields as u64) as usize * 4;
                let random = rng.next() as u32;
                let near_end = (bytes.len() as u32).wrapping_add(rng.below(64) as u32);
                let v = rng.pick(&[
                    0u32,
                    1,
                    2,
                    7,
                    9,
                    12,
                    0x7FFF_FFFF,
                    u32::MAX,
                    random,
                    near_end,
                ]);
                bytes[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
        }
        // Pure garbage of a random length.
        4 => {
            let n = rng.below(300) as usize;
            *bytes = (0..n).map(|_| rng.next() as u8).collect();
        }
        // Garbage behind a plausible metadata block.
        5 => {
            let n = 16 + rng.below(200) as usize;
            let mut b: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            b[0..4].copy_from_slice(&(1 + rng.below(8) as u32).to_be_bytes());
            b[8..12].copy_from_slice(&0.5f32.to_be_bytes());
            b[12..16].copy_from_slice(&(rng.below(5) as u32).to_be_bytes());
            *bytes = b;
        }
        // Extra bytes at the end.
        6 => bytes.extend((0..rng.below(40)).map(|_| rng.next() as u8)),
        // Random bytes over a random stretch of the data.
        _ => {
            if !bytes.is_empty() {
                let start = rng.below(bytes.len() as u64) as usize;
                let end = (start + rng.below(48) as usize).min(bytes.len());
                for b in &mut bytes[start..end] {
                    *b = rng.next() as u8;
                }
            }
        }
    }
}

/// Runs every read and write entry point on `path`; any panic fails the test.
fn exercise(path: &Path, rng: &mut Rng) {
    let before = std::fs::read(path).unwrap();
    let ro = WhisperFile::open(path);
    let rw = WhisperFile::open_rw(path);
    assert_eq!(ro.is_ok(), rw.is_ok());
    match rw {
        Err(e) => {
            assert!(
                matches!(e, WhisperError::Corrupt { .. }),
                "a bad file is CorruptWhisperFile, got {e:?}"
            );
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert_eq!(
                std::fs::read(path).unwrap(),
                before,
                "a refused file is left untouched"
            );
        }
        Ok(mut f) => {
            let header = f.header().clone();
            let random = rng.next() as i64;
            let nows = [NOW, 0, 1, u32::MAX as i64, i64::MAX, i64::MIN, random];
            for _ in 0..3 {
                let now = rng.pick(&nows);
                let from = now.wrapping_sub(rng.below(header.max_retention as u64 + 100) as i64);
                let _ = f.fetch(from, None, now, None);
                let _ = f.fetch(rng.next() as i64, Some(rng.next() as i64), now, None);
                for a in &header.archives {
                    let _ = f.fetch(from, Some(now), now, Some(a.seconds_per_point));
                    let _ = f.archive_fetch(a, now.wrapping_sub(a.retention()), now);
                }
                let _ = f.archive_slots(rng.below(header.archives.len() as u64 + 1) as usize);
                let points: Vec<Point> = (0..rng.below(30))
                    .map(|_| {
                        (
                            now.wrapping_sub(
                                rng.below(header.max_retention as u64 + 100) as i64 - 50,
                            ),
                            rng.next() as f64,
                        )
                    })
                    .collect();
                let _ = f.update_many(&points, now);
                let _ = f.update(1.0, Some(now.wrapping_sub(rng.below(100) as i64)), now);
            }
        }
    }
}

#[test]
fn corrupt_and_garbled_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    let path = dir.path().join("garbled.wsp");
    let mut opened = 0;
    // Creating a file per case would measure the filesystem; mutate copies of a few instead.
    let templates: Vec<Vec<u8>> = (0..48)
        .map(|n| valid_file(dir.path(), &mut rng, n))
        .collect();
    for case in 0..4000 {
        let mut bytes = templates[rng.below(templates.len() as u64) as usize].clone();
        for _ in 0..1 + rng.below(3) {
            mutate(&mut bytes, &mut rng);
        }
        overwrite(&path, &bytes);
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exercise(&path, &mut rng)));
        assert!(
            result.is_ok(),
            "case {case} panicked on {} bytes: {:02x?}",
            bytes.len(),
            &bytes[..bytes.len().min(64)]
        );
        if WhisperFile::open(&path).is_ok() {
            opened += 1;
        }
    }
    // Both outcomes must have been exercised.
    assert!(
        opened > 200 && opened < 3800,
        "{opened} of 4000 garbled files opened"
    );
}

/// Replaces the file's contents without truncating it to zero first (ext4 flushes a file
/// truncated to zero and rewritten when it is closed, which would dominate the run time).
fn overwrite(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    f.write_all_at(bytes, 0).unwrap();
    f.set_len(bytes.len() as u64).unwrap();
}

fn write(dir: &Path, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join("c.wsp");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn header_bytes(method: u32, max_ret: u32, xff: f32, archives: &[(u32, u32, u32)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&method.to_be_bytes());
    b.extend_from_slice(&max_ret.to_be_bytes());
    b.extend_from_slice(&xff.to_be_bytes());
    b.extend_from_slice(&(archives.len() as u32).to_be_bytes());
    for &(o, s, p) in archives {
        b.extend_from_slice(&o.to_be_bytes());
        b.extend_from_slice(&s.to_be_bytes());
        b.extend_from_slice(&p.to_be_bytes());
    }
    b
}

fn corrupt_message(path: &Path) -> String {
    let before = std::fs::read(path).unwrap();
    let e = WhisperFile::open_rw(path).unwrap_err();
    assert!(matches!(e, WhisperError::Corrupt { .. }), "{e:?}");
    assert_eq!(std::fs::read(path).unwrap(), before);
    let msg = e.to_string();
    assert!(msg.ends_with(&format!("({})", path.display())), "{msg}");
    msg
}

#[test]
fn each_kind_of_corruption_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = |b: &mut Vec<u8>| b.resize(28 + 120, 0);
    // Too short for the metadata, as whisper.py's `Unable to read header`.
    for n in [0usize, 1, 15] {
        let p = write(d, &vec![0u8; n]);
        assert!(corrupt_message(&p).starts_with("Unable to read header ("));
    }
    // Unknown aggregation type; xFilesFactor out of range or NaN.
    for (m, x) in [(0u32, 0.5f32), (9, 0.5), (1, 1.5), (1, -0.1), (1, f32::NAN)] {
        let mut b = header_bytes(m, 600, x, &[(28, 60, 10)]);
        good(&mut b);
        assert!(corrupt_message(&write(d, &b)).starts_with("Unable to read header ("));
    }
    // The file ends inside archive-info block 1, as whisper.py's message.
    let b = header_bytes(1, 600, 0.5, &[(40, 60, 10), (160, 300, 10)]);
    assert!(corrupt_message(&write(d, &b[..30])).starts_with("Unable to read archive1 metadata ("));
    // No archives, an absurd count.
    for count in [0u32, 5000, u32::MAX] {
        let mut b = header_bytes(1, 600, 0.5, &[(28, 60, 10)]);
        b[12..16].copy_from_slice(&count.to_be_bytes());
        good(&mut b);
        assert!(corrupt_message(&write(d, &b)).contains("archive count"));
    }
    // Zero precision, zero points.
    for (s, p) in [(0u32, 10u32), (60, 0)] {
        let mut b = header_bytes(1, 600, 0.5, &[(28, s, p)]);
        good(&mut b);
        assert!(corrupt_message(&write(d, &b)).contains("archive0 metadata"));
    }
    // Archive beyond the end of the file (truncated), or over the header.
    for (offset, len) in [(28u32, 100usize), (28, 147), (4, 148), (u32::MAX - 10, 148)] {
        let mut b = header_bytes(1, 600, 0.5, &[(offset, 60, 10)]);
        b.resize(len, 0);
        assert!(corrupt_message(&write(d, &b)).contains("lies outside"));
    }
    // maxRetention beyond every archive.
    let mut b = header_bytes(1, 601, 0.5, &[(28, 60, 10)]);
    good(&mut b);
    assert!(corrupt_message(&write(d, &b)).contains("maxRetention 601"));
    // And the same header with a sane maxRetention opens.
    let mut b = header_bytes(1, 600, 0.5, &[(28, 60, 10)]);
    good(&mut b);
    assert!(WhisperFile::open(&write(d, &b)).is_ok());
}
