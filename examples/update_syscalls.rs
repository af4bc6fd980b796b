//! The kernel's floor under a one-point whisper update, without carbonhound: the system calls
//! an update makes, on files of a `10s:1h,1m:12h` size (13,000 bytes), in rounds over all of
//! them, with the file opened and closed each time (`open`) or held open (`held`). What the
//! writers' kept files (`[cache] open_files`) can save is the difference (BENCHMARKS.md,
//! "W-ingest L"). The held run needs an open-file limit above the file count. `held-cachestat`
//! and `held-preadv2` add the writers' page probe (`WhisperFile::prefetch_update`: is each of
//! the update's two pages in the page cache?) done either way, so the probe's cost an update
//! is the difference to `held`.
//!
//! ```text
//! cargo run --release --example update_syscalls -- /var/tmp/sc 19000 create
//! cargo run --release --example update_syscalls -- /var/tmp/sc 19000 open 4
//! cargo run --release --example update_syscalls -- /var/tmp/sc 19000 held 4
//! cargo run --release --example update_syscalls -- /var/tmp/sc 19000 held-cachestat 4
//! cargo run --release --example update_syscalls -- /var/tmp/sc 19000 held-preadv2 4
//! ```

use std::ffi::CString;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!(
            "usage: update_syscalls DIR FILES create|open|held|held-cachestat|held-preadv2 [ROUNDS]"
        );
        std::process::exit(2);
    }
    let dir = &args[1];
    let n: usize = args[2].parse().expect("FILES: a number");
    let mode = args[3].as_str();
    let rounds: usize = args
        .get(4)
        .map_or(3, |s| s.parse().expect("ROUNDS: a number"));
    let names: Vec<CString> = (0..n)
        .map(|i| CString::new(format!("h{:05}/m{:02}.wsp", i / 20, i % 20)).unwrap())
        .collect();
    std::fs::create_dir_all(dir).expect("DIR");
    let dirc = CString::new(dir.as_str()).unwrap();
    // SAFETY (every block below): plain system calls on descriptors this function owns and
    // buffers that outlive the call.
    let dfd = unsafe { libc::open(dirc.as_ptr(), libc::O_PATH | libc::O_DIRECTORY) };
    assert!(dfd >= 0, "open {dir}");
    if mode == "create" {
        let buf = vec![0u8; 13_000];
        for h in 0..n.div_ceil(20) {
            std::fs::create_dir_all(format!("{dir}/h{h:05}")).unwrap();
        }
        for name in &names {
            unsafe {
                let fd = libc::openat(dfd, name.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644);
                assert!(fd >= 0, "create");
                libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), 0);
                libc::close(fd);
            }
        }
        return;
    }
    let open = |name: &CString| unsafe {
        let fd = libc::openat(
            dfd,
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOATIME | libc::O_CLOEXEC,
        );
        assert!(fd >= 0, "open: {}", std::io::Error::last_os_error());
        fd
    };
    let held: Vec<i32> = match mode {
        "held" | "held-cachestat" | "held-preadv2" => names.iter().map(open).collect(),
        "open" => Vec::new(),
        other => panic!("mode: create, open, held, held-cachestat or held-preadv2, not {other:?}"),
    };
    // The page probe: whether the page at `offset` is in the page cache.
    let probe = |fd: i32, offset: i64| unsafe {
        match mode {
            "held-cachestat" => {
                let range = [(offset & !4095) as u64, 4096];
                let mut stat = [0u64; 5];
                // cachestat(2): number 451 on every architecture.
                libc::syscall(451, fd, range.as_ptr(), stat.as_mut_ptr(), 0u32);
            }
            "held-preadv2" => {
                let mut byte = 0u8;
                let iov = libc::iovec {
                    iov_base: (&mut byte as *mut u8).cast(),
                    iov_len: 1,
                };
                libc::preadv2(fd, &iov, 1, offset & !4095, libc::RWF_NOWAIT);
            }
            _ => {}
        }
    };
    let mut buf = [0u8; 72];
    for r in 0..rounds {
        let started = Instant::now();
        for (i, name) in names.iter().enumerate() {
            // The archive-0 slot, the propagation window before it, the archive-1 slot.
            let slot0 = 40 + ((r * 12) % 4_000) as i64 + 60;
            let slot1 = 4_400 + ((r * 12) % 8_000) as i64;
            unsafe {
                let fd = if held.is_empty() { open(name) } else { held[i] };
                let mut st: libc::stat = std::mem::zeroed();
                libc::fstat(fd, &mut st);
                if held.is_empty() {
                    libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_RANDOM);
                }
                probe(fd, slot0);
                probe(fd, slot1);
                libc::pwrite(fd, buf.as_ptr().cast(), 12, slot0);
                libc::pread(fd, buf.as_mut_ptr().cast(), 72, slot0 - 60);
                libc::pwrite(fd, buf.as_ptr().cast(), 12, slot1);
                if held.is_empty() {
                    libc::close(fd);
                }
            }
        }
        let s = started.elapsed().as_secs_f64();
        println!("{mode} round {r}: {:.2} µs an update", s * 1e6 / n as f64);
    }
}
