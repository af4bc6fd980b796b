//! Cross-compatibility with Python's whisper module (Debian python3-whisper, whisper 1.1), the
//! reference implementation, driven through tests/support/whisper_compat.py.
//!
//! `randomized_files_match_whisper_py`: hundreds of random cases (fixed seed): random valid
//! retentions (1–4 archives), aggregation methods, xFilesFactors and update sequences
//! (`update_many` batches from one point to thousands — out of order, exactly duplicated and
//! same-interval timestamps, points older than the retention, points in the future — and
//! single `update`s), each with a fixed `now` given to both sides. Per case:
//! (a) whisper.py reads the file we wrote exactly as we read it;
//! (b) we read the file whisper.py wrote exactly as it reads it;
//! (c) the two files, built by the same operations, read the same (`info()` and `fetch()` of
//!     every archive via `archiveToSelect`, default fetches and random windows; floats bit for
//!     bit, `None` for `None`, `None` results and exception classes alike), and their bytes are
//!     equal — except that a lower archive's ring may be rotated (see `compare_bytes`).
//!
//! `cli_output_matches_python_tools`: `carbonhound whisper …` against /usr/bin/whisper-* on the
//! same files.
//!
//! A machine without /usr/bin/python3 or its whisper module fails these tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use carbonhound::whisper::{
    create, AggregationMethod, CreateOptions, Preallocation, Retention, WhisperError, WhisperFile,
};
use serde_json::{json, Value};

const PYTHON: &str = "/usr/bin/python3";

fn support(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// Fails (never skips) when the reference is missing.
fn require_whisper_py() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import whisper"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{PYTHON} with the whisper module is required for these tests: install python3-whisper \
         (apt-get install python3-whisper)"
    );
}

fn run_python(job: &Value) -> Value {
    use std::io::Write;
    let mut child = Command::new(PYTHON)
        .arg(support("whisper_compat.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start /usr/bin/python3");
    let input = serde_json::to_vec(job).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "whisper_compat.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("whisper_compat.py answers JSON")
}

/// splitmix64, fixed seed: the same cases on every run.
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
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn hex(v: f64) -> String {
    format!("{:016x}", v.to_bits())
}

fn align(t: i64, step: i64) -> i64 {
    t - t.rem_euclid(step)
}

#[derive(Debug, Clone)]
enum Op {
    Many { now: i64, points: Vec<(i64, f64)> },
    One { now: i64, t: i64, v: f64 },
}

#[derive(Debug, Clone)]
struct Case {
    /// As given to `create` (possibly out of order; both sides sort).
    given: Vec<(u32, u32)>,
    /// Sorted by precision, as in the header.
    archives: Vec<(u32, u32)>,
    xff: f32,
    method: AggregationMethod,
    ops: Vec<Op>,
    read_now: i64,
    windows: Vec<(i64, Option<i64>, Option<u32>)>,
}

/// Archives valid under whisper's rules: each precision divides the next, retentions grow,
/// each archive has enough points to consolidate into the next. Sometimes the next retention
/// is only just longer (the tight cases that find ring edge effects).
fn gen_archives(rng: &mut Rng) -> Vec<(u32, u32)> {
    loop {
        let n = 1 + rng.below(4) as usize;
        let mut spp = rng.pick(&[1u32, 2, 3, 5, 10, 60]);
        let mut pts = 3 + rng.below(40) as u32;
        let mut v = vec![(spp, pts)];
        while v.len() < n {
            let factors: Vec<u32> = [2u32, 3, 4, 5, 6, 10]
                .into_iter()
                .filter(|&f| f <= pts)
                .collect();
            if factors.is_empty() {
                break;
            }
            let next_spp = spp * rng.pick(&factors);
            let min_pts = spp * pts / next_spp + 1;
            let next_pts = match rng.below(3) {
                0 => min_pts,
                1 => min_pts + 1 + rng.below(3) as u32,
                _ => min_pts + rng.below(2 * min_pts as u64 + 10) as u32,
            }
            .max(2);
            v.push((next_spp, next_pts));
            spp = next_spp;
            pts = next_pts;
        }
        let max_ret = v.iter().map(|&(s, p)| s as u64 * p as u64).max().unwrap();
        if max_ret / v[0].0 as u64 <= 200_000 {
            return v;
        }
    }
}

/// A value; `style` 0 draws only from a few small numbers (ties for max/min/absmax/absmin,
/// ±0, equal sums), 1 mixes everything, 2 adds the extremes more often.
fn gen_value(rng: &mut Rng, style: u64) -> f64 {
    if style == 0 {
        return rng.pick(&[-3.0, -2.0, -1.0, -0.0, 0.0, 1.0, 2.0, 3.0, 0.5, -0.5]);
    }
    match rng.below(if style == 1 { 40 } else { 10 }) {
        0..=3 => rng.below(7) as f64 - 3.0,
        4 => (rng.unit() - 0.5) * 1e300,
        5 => rng.unit() * 1e-300,
        6 => rng.pick(&[-0.0, 0.0]),
        7 => rng.pick(&[f64::INFINITY, f64::NEG_INFINITY, f64::NAN]),
        8 => f64::from_bits(rng.next()),
        9..=24 => (rng.unit() - 0.5) * 2000.0,
        _ => (rng.unit() * 100.0).round() / 4.0,
    }
}

/// Removes from an `update_many` batch the points whose outcome in whisper.py depends on
/// CPython's set iteration order or writes outside the archive (both documented in
/// `WhisperFile::update_many`; our own behaviour there is pinned by unit tests):
/// - future points that would make a run of the first archive longer than its ring + 1
///   (whisper.py then writes past the archive's end);
/// - points whose interval in some lower archive falls on the same ring slot as a different
///   interval of a newer point of the same call (whisper.py's survivor is whichever its set
///   yields last).
fn sanitize(points: Vec<(i64, f64)>, archives: &[(u32, u32)], now: i64) -> Vec<(i64, f64)> {
    let rets: Vec<i64> = archives.iter().map(|&(s, p)| s as i64 * p as i64).collect();
    let chunk = |t: i64| rets.iter().position(|&r| r >= now - t);
    let (spp0, p0) = (archives[0].0 as i64, archives[0].1 as i64);
    let min0 = points
        .iter()
        .filter(|p| chunk(p.0) == Some(0))
        .map(|p| align(p.0, spp0))
        .min();
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| points[b].0.cmp(&points[a].0)); // newest first, stable
    let mut keep = vec![true; points.len()];
    let mut slots: HashMap<(usize, usize, i64), i64> = HashMap::new();
    for i in order {
        let t = points[i].0;
        let Some(c) = chunk(t) else { continue };
        if c == 0 && t > now && align(t, spp0) > min0.unwrap() + p0 * spp0 {
            keep[i] = false;
            continue;
        }
        let lower: Vec<(usize, i64, i64)> = (c + 1..archives.len())
            .map(|j| {
                let (s, p) = (archives[j].0 as i64, archives[j].1 as i64);
                let l = align(t, s);
                (j, (l / s).rem_euclid(p), l)
            })
            .collect();
        if lower
            .iter()
            .any(|&(j, slot, l)| slots.get(&(c, j, slot)).is_some_and(|&o| o != l))
        {
            keep[i] = false;
            continue;
        }
        for (j, slot, l) in lower {
            slots.insert((c, j, slot), l);
        }
    }
    points
        .into_iter()
        .zip(keep)
        .filter(|&(_, k)| k)
        .map(|(p, _)| p)
        .collect()
}

fn gen_case(rng: &mut Rng) -> Case {
    let archives = gen_archives(rng);
    let mut given = archives.clone();
    if rng.below(3) == 0 {
        given.reverse();
    }
    let xff = match rng.below(10) {
        0 => 0.0,
        1 => 0.1,
        2 => 0.25,
        3 => 1.0 / 3.0,
        4 | 5 => 0.5,
        6 => 0.75,
        7 => 1.0,
        _ => rng.unit() as f32,
    };
    let method = AggregationMethod::ALL[rng.below(8) as usize];
    let style = rng.below(3);
    let spp0 = archives[0].0 as i64;
    let max_ret: i64 = archives
        .iter()
        .map(|&(s, p)| s as i64 * p as i64)
        .max()
        .unwrap();
    let rets: Vec<i64> = archives.iter().map(|&(s, p)| s as i64 * p as i64).collect();
    let mut now = 1_400_000_000 + rng.below(200_000_000) as i64;
    let mut ops = Vec::new();
    for _ in 0..1 + rng.below(8) {
        now += match rng.below(7) {
            0 => 0,
            1 => rng.below(spp0 as u64 * 5) as i64,
            2 => rng.below(max_ret as u64 / 2 + 1) as i64,
            3 => rng.below(max_ret as u64 * 2 + 1) as i64,
            4 => -(rng.below(spp0 as u64 * 3) as i64),
            _ => rng.below(max_ret as u64 / 10 + 1) as i64,
        };
        if rng.below(5) == 0 {
            let t = match rng.below(6) {
                0 => now + 1 + rng.below(spp0 as u64 * 2) as i64,
                1 => now - max_ret + rng.below(2) as i64,
                2 => now,
                _ => now - rng.below(max_ret as u64) as i64,
            };
            ops.push(Op::One {
                now,
                t,
                v: gen_value(rng, style),
            });
            continue;
        }
        let count = match rng.below(10) {
            0 => 1,
            1..=5 => 2 + rng.below(20),
            6..=8 => 20 + rng.below(200),
            _ => 500 + rng.below(1500),
        };
        let mut points: Vec<(i64, f64)> = Vec::new();
        for _ in 0..count {
            let t = match rng.below(12) {
                0 if !points.is_empty() => points[rng.below(points.len() as u64) as usize].0,
                1 if !points.is_empty() => {
                    let t = points[rng.below(points.len() as u64) as usize].0;
                    align(t, spp0) + rng.below(spp0 as u64) as i64
                }
                2 => now + 1 + rng.below(spp0 as u64 * 3) as i64,
                3 => now - max_ret - 1 - rng.below(max_ret as u64) as i64,
                4 => now - rets[rng.below(rets.len() as u64) as usize] - rng.below(2) as i64,
                _ => now - rng.below(max_ret as u64 + 1) as i64,
            };
            points.push((t, gen_value(rng, style)));
        }
        let points = sanitize(points, &archives, now);
        ops.push(Op::Many { now, points });
    }
    let read_now = now
        + if rng.below(2) == 0 {
            0
        } else {
            rng.below(spp0 as u64 * 3) as i64
        };
    let mut windows = Vec::new();
    for &(s, p) in &archives {
        let ret = s as i64 * p as i64;
        windows.push((read_now - ret, Some(read_now), Some(s)));
        windows.push((read_now - ret, None, None));
        windows.push((
            read_now - ret + rng.below(ret as u64) as i64,
            Some(read_now - rng.below(s as u64 * 2) as i64),
            None,
        ));
    }
    // A zero-length range (one point), and archiveToSelect 0 (falsy in whisper.py: no selection).
    let t = read_now - rng.below(max_ret as u64) as i64;
    windows.push((t, Some(t), None));
    windows.push((t, Some(read_now), Some(0)));
    for _ in 0..8 {
        let from = read_now - rng.below(max_ret as u64 * 3 / 2 + 2) as i64
            + if rng.below(8) == 0 {
                rng.below(spp0 as u64 * 3) as i64
            } else {
                0
            };
        let until = match rng.below(6) {
            0 => None,
            1 => Some(from - 1 - rng.below(10) as i64),
            2 => Some(read_now + rng.below(1000) as i64),
            _ => Some(from + rng.below(max_ret as u64 + 1) as i64),
        };
        let select = match rng.below(6) {
            0 | 1 => Some(archives[rng.below(archives.len() as u64) as usize].0),
            2 => Some(7777),
            _ => None,
        };
        windows.push((from, until, select));
    }
    Case {
        given,
        archives,
        xff,
        method,
        ops,
        read_now,
        windows,
    }
}

fn error_class(e: &WhisperError) -> String {
    match e {
        WhisperError::TimestampNotCovered => "TimestampNotCovered".into(),
        WhisperError::InvalidTimeInterval(_) => "InvalidTimeInterval".into(),
        // whisper.py raises ValueError("Invalid granularity: …").
        WhisperError::InvalidConfiguration(m) if m.starts_with("Invalid granularity") => {
            "ValueError".into()
        }
        other => format!("{other:?}"),
    }
}

/// Our reading of a file, in the shape whisper_compat.py answers.
fn our_read(path: &Path, case: &Case) -> Value {
    let f = WhisperFile::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let h = f.header();
    let info = json!({
        "aggregationMethod": h.aggregation_method.name(),
        "maxRetention": h.max_retention,
        "xFilesFactor": hex(h.x_files_factor as f64),
        "archives": h.archives.iter().map(|a| json!([a.offset, a.seconds_per_point, a.points, a.retention(), a.size()])).collect::<Vec<_>>(),
    });
    let fetches: Vec<Value> = case
        .windows
        .iter()
        .map(
            |&(from, until, select)| match f.fetch(from, until, case.read_now, select) {
                Err(e) => json!({ "error": error_class(&e) }),
                Ok(None) => Value::Null,
                Ok(Some(r)) => json!([
                    r.from,
                    r.until,
                    r.step,
                    r.values.iter().map(|v| v.map(hex)).collect::<Vec<_>>()
                ]),
            },
        )
        .collect();
    json!({ "info": info, "fetches": fetches })
}

/// Applies the case's operations to our file; the error class of each (or null).
fn our_ops(path: &Path, case: &Case) -> Vec<Value> {
    let retentions: Vec<Retention> = case
        .given
        .iter()
        .map(|&(s, p)| Retention {
            seconds_per_point: s,
            points: p,
        })
        .collect();
    let opts = CreateOptions {
        x_files_factor: case.xff,
        aggregation_method: case.method,
        preallocation: Preallocation::Zero,
    };
    create(path, &retentions, opts).unwrap();
    let mut f = WhisperFile::open_rw(path).unwrap();
    case.ops
        .iter()
        .map(|op| {
            let r = match op {
                Op::Many { now, points } => f.update_many(points, *now),
                Op::One { now, t, v } => f.update(*v, Some(*t), *now),
            };
            match r {
                Ok(()) => Value::Null,
                Err(e) => Value::String(error_class(&e)),
            }
        })
        .collect()
}

fn case_job(case: &Case, py_path: &Path, our_path: &Path) -> Value {
    let ops: Vec<Value> = case
        .ops
        .iter()
        .map(|op| match op {
            Op::Many { now, points } => json!({
                "op": "update_many", "now": now,
                "points": points.iter().map(|&(t, v)| json!([t, hex(v)])).collect::<Vec<_>>(),
            }),
            Op::One { now, t, v } => json!({ "op": "update", "now": now, "t": t, "v": hex(*v) }),
        })
        .collect();
    let windows: Vec<Value> = case
        .windows
        .iter()
        .map(|&(f, u, s)| json!([f, u, s]))
        .collect();
    let read = |p: &Path| json!({ "path": p, "now": case.read_now, "windows": windows });
    json!({
        "py_path": py_path,
        "archives": case.given,
        "xff": case.xff as f64,
        "method": case.method.name(),
        "ops": ops,
        "reads": [read(py_path), read(our_path)],
    })
}

/// Compares the two files' bytes: the header and the first archive must be identical; a lower
/// archive must be identical or the same ring rotated. whisper.py propagates the intervals of
/// one `update_many` in CPython's set order, we in ascending order; into an empty lower archive
/// the first interval written becomes its base (slot 0), so the two rings can differ by a
/// rotation while every read agrees. Returns how many lower archives were rotated.
fn compare_bytes(ours: &[u8], theirs: &[u8], archives: &[(u32, u32)], what: &str) -> usize {
    assert_eq!(ours.len(), theirs.len(), "{what}: file sizes");
    let header = 16 + 12 * archives.len();
    assert_eq!(ours[..header], theirs[..header], "{what}: headers");
    let mut offset = header;
    let mut rotated = 0;
    for (i, &(_, points)) in archives.iter().enumerate() {
        let size = points as usize * 12;
        let (a, b) = (&ours[offset..offset + size], &theirs[offset..offset + size]);
        if a != b {
            assert!(i > 0, "{what}: archive 0 bytes differ");
            let n = points as usize;
            let is_rotation = (1..n).any(|k| {
                (0..n).all(|s| {
                    a[s * 12..s * 12 + 12] == b[((s + k) % n) * 12..((s + k) % n) * 12 + 12]
                })
            });
            assert!(
                is_rotation,
                "{what}: archive {i} bytes differ by more than a rotation of the ring"
            );
            rotated += 1;
        }
        offset += size;
    }
    rotated
}

#[test]
fn randomized_files_match_whisper_py() {
    require_whisper_py();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x0057_4849_5350_4552); // "WHISPER"
    const CASES: usize = 320;
    let cases: Vec<Case> = (0..CASES).map(|_| gen_case(&mut rng)).collect();

    // Our side first: create and update every file.
    let mut jobs = Vec::new();
    let mut our_errors = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let ours = dir.path().join(format!("ours{i}.wsp"));
        let theirs = dir.path().join(format!("py{i}.wsp"));
        our_errors.push(our_ops(&ours, case));
        jobs.push(case_job(case, &theirs, &ours));
    }
    // whisper.py: create and update its files, read both.
    let answer = run_python(&json!({ "cases": jobs }));
    let answers = answer["cases"].as_array().unwrap();
    assert_eq!(answers.len(), CASES);

    let (mut points, mut rotated, mut nones, mut errors, mut not_covered) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    for (i, (case, py)) in cases.iter().zip(answers).enumerate() {
        let what = format!(
            "case {i} ({:?}, xff {}, {})",
            case.given,
            case.xff,
            case.method.name()
        );
        assert_eq!(
            py["create_error"],
            Value::Null,
            "{what}: whisper.py refused the archives"
        );
        let py_errors: Vec<Value> = py["op_errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| match e.as_str() {
                Some(s) => Value::String(s.split(':').next().unwrap().to_string()),
                None => Value::Null,
            })
            .collect();
        assert_eq!(our_errors[i], py_errors, "{what}: errors of the operations");
        not_covered += py_errors.iter().filter(|e| !e.is_null()).count();

        let ours_path = dir.path().join(format!("ours{i}.wsp"));
        let py_path = dir.path().join(format!("py{i}.wsp"));
        let py_reads_py = &py["reads"][0];
        let py_reads_ours = &py["reads"][1];
        let we_read_ours = our_read(&ours_path, case);
        let we_read_py = our_read(&py_path, case);
        // (a) whisper.py reads our file as we do.
        assert_eq!(
            *py_reads_ours, we_read_ours,
            "{what}: whisper.py's reading of our file vs ours"
        );
        // (b) we read whisper.py's file as it does.
        assert_eq!(
            we_read_py, *py_reads_py,
            "{what}: our reading of whisper.py's file vs whisper.py's"
        );
        // (c) the same operations give files that read the same...
        assert_eq!(
            we_read_ours, *py_reads_py,
            "{what}: our file vs whisper.py's file, same operations"
        );
        // ...and hold the same bytes, up to the rotation of a lower ring.
        let ours_bytes = std::fs::read(&ours_path).unwrap();
        let py_bytes = std::fs::read(&py_path).unwrap();
        rotated += compare_bytes(&ours_bytes, &py_bytes, &case.archives, &what);

        for f in we_read_ours["fetches"].as_array().unwrap() {
            match f {
                Value::Null => nones += 1,
                Value::Object(_) => errors += 1,
                _ => {}
            }
        }
        points += case
            .ops
            .iter()
            .map(|o| match o {
                Op::Many { points, .. } => points.len(),
                Op::One { .. } => 1,
            })
            .sum::<usize>();
    }
    eprintln!(
        "{CASES} cases, {points} points written; {rotated} lower rings rotated; fetches: {nones} None, \
         {errors} errors; {not_covered} single updates refused"
    );
    // The generator must reach the interesting paths.
    assert!(nones > 0 && errors > 0 && not_covered > 0 && rotated > 0);
}

// ---------------------------------------------------------------------------------------
// The command-line tools.

struct Run {
    stdout: String,
    stderr: String,
    code: i32,
}

fn run(program: &str, args: &[&str], tz: bool) -> Run {
    let mut cmd = if program == "ours" {
        let mut c = Command::new(env!("CARGO_BIN_EXE_carbonhound"));
        c.arg("whisper");
        c
    } else {
        let mut c = Command::new(PYTHON);
        c.arg(format!("/usr/bin/{program}"));
        c
    };
    if tz {
        cmd.env("TZ", "UTC");
    }
    let out = cmd.args(args).output().unwrap();
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Runs our `whisper SUB` and Python's `whisper-TOOL` with the same arguments; they must print
/// the same stdout, the same stderr (when `same_stderr`) and exit alike. Time-dependent runs
/// (defaults relative to now) are retried once when a second ticked over between them.
fn compare(sub: &str, tool: &str, args: &[&str], tz: bool, same_stderr: bool) {
    let mut attempt = 0;
    loop {
        let mut ours_args = vec![sub];
        ours_args.extend_from_slice(args);
        let ours = run("ours", &ours_args, tz);
        let theirs = run(tool, args, tz);
        let same = ours.stdout == theirs.stdout
            && ours.code == theirs.code
            && (!same_stderr || ours.stderr == theirs.stderr);
        if same {
            assert!(!ours.stderr.contains("panicked"), "{}", ours.stderr);
            return;
        }
        attempt += 1;
        if attempt == 2 {
            assert_eq!(ours.stdout, theirs.stdout, "stdout of {sub} {args:?}");
            assert_eq!(
                ours.code, theirs.code,
                "exit code of {sub} {args:?}: {} / {}",
                ours.stderr, theirs.stderr
            );
            assert_eq!(ours.stderr, theirs.stderr, "stderr of {sub} {args:?}");
        }
    }
}

/// Runs a tool that changes a file on a fresh copy of `original` at `path`, ours then
/// Python's; outputs and resulting bytes must match.
fn compare_changing(sub: &str, tool: &str, args: &[&str], path: &Path, original: Option<&[u8]>) {
    let prepare = || {
        let _ = std::fs::remove_file(path);
        if let Some(bytes) = original {
            std::fs::write(path, bytes).unwrap();
        }
    };
    prepare();
    let mut ours_args = vec![sub];
    ours_args.extend_from_slice(args);
    let ours = run("ours", &ours_args, false);
    let ours_bytes = std::fs::read(path).ok();
    prepare();
    let theirs = run(tool, args, false);
    let their_bytes = std::fs::read(path).ok();
    assert_eq!(ours.stdout, theirs.stdout, "stdout of {sub} {args:?}");
    assert_eq!(
        ours.code, theirs.code,
        "exit code of {sub} {args:?}: {} / {}",
        ours.stderr, theirs.stderr
    );
    assert_eq!(ours.stderr, theirs.stderr, "stderr of {sub} {args:?}");
    if ours.code == 0 {
        assert_eq!(ours_bytes, their_bytes, "file written by {sub} {args:?}");
    }
}

#[test]
fn cli_output_matches_python_tools() {
    require_whisper_py();
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let made = p("made.wsp");

    // whisper create: same output, same bytes.
    for args in [
        vec!["60:20", "5m:1h"],
        vec![
            "--xFilesFactor",
            "0.3",
            "--aggregationMethod",
            "sum",
            "1s:10",
            "10s:2m",
            "1m:1h",
        ],
        vec!["--sparse", "10:100"],
        vec!["--fallocate", "1h:7d", "1m:1d"],
        vec![
            "--xFilesFactor",
            "0",
            "--aggregationMethod",
            "absmin",
            "15m:8",
        ],
    ] {
        let mut full = vec![made.as_str()];
        full.extend(args);
        compare_changing("create", "whisper-create", &full, Path::new(&made), None);
    }
    let existing = std::fs::read(&made).unwrap();
    // Existing file, with and without --overwrite.
    compare_changing(
        "create",
        "whisper-create",
        &[&made, "60:10"],
        Path::new(&made),
        Some(&existing),
    );
    compare_changing(
        "create",
        "whisper-create",
        &[&made, "60:10", "--overwrite"],
        Path::new(&made),
        Some(&existing),
    );
    // Refused archive lists.
    for bad in [
        ["60:10", "60:20"],
        ["60:100", "90:1000"],
        ["60:100", "120:10"],
        ["60:3", "300:100"],
    ] {
        compare_changing(
            "create",
            "whisper-create",
            &[&made, bad[0], bad[1]],
            Path::new(&made),
            None,
        );
    }
    // A bad method or xFilesFactor: same message and status (whisper.py leaves an empty file
    // behind, we create nothing, so the bytes are not compared).
    for bad in [["--aggregationMethod", "median"], ["--xFilesFactor", "1.5"]] {
        let _ = std::fs::remove_file(&made);
        let ours = run("ours", &["create", &made, "60:10", bad[0], bad[1]], false);
        assert!(!Path::new(&made).exists(), "nothing created on error");
        let theirs = run("whisper-create", &[&made, "60:10", bad[0], bad[1]], false);
        assert_eq!(
            (ours.stdout, ours.stderr, ours.code),
            (theirs.stdout, theirs.stderr, theirs.code)
        );
    }
    for args in [
        vec!["--estimate", "10s:6h,1m:7d,10m:5y"],
        vec!["--estimate", "60:1440", "15m:8", "1h:7d"],
    ] {
        compare("create", "whisper-create", &args, false, true);
    }

    // A file with history: info, dump, fetch.
    let data = p("data.wsp");
    let retentions: Vec<Retention> = ["1m:2h", "5m:1d", "1h:7d"]
        .iter()
        .map(|d| carbonhound::whisper::parse_retention_def(d).unwrap())
        .collect();
    let opts = CreateOptions {
        x_files_factor: 0.3,
        aggregation_method: AggregationMethod::Average,
        preallocation: Preallocation::Zero,
    };
    create(Path::new(&data), &retentions, opts).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut rng = Rng(42);
    let mut points: Vec<(i64, f64)> = Vec::new();
    for i in 0..4000 {
        if rng.below(5) != 0 {
            points.push((
                now - i * 53 - rng.below(30) as i64,
                (rng.unit() - 0.5) * 1000.0,
            ));
        }
    }
    points.extend([
        (now - 600, 0.0),
        (now - 660, -0.0),
        (now - 720, 1e300),
        (now - 780, 1e-300),
        (now - 840, f64::NAN),
        (now - 900, f64::INFINITY),
    ]);
    points.extend([
        (now - 3600 * 3, 0.0),
        (now - 3600 * 5, 1.0 / 3.0),
        (now - 86400 * 2, 1e21),
    ]);
    let mut f = WhisperFile::open_rw(Path::new(&data)).unwrap();
    f.update_many(&points, now).unwrap();
    drop(f);

    for args in [vec![data.as_str()], vec![&data, "--json"]] {
        compare("info", "whisper-info", &args, false, true);
    }
    for field in [
        "aggregationMethod",
        "maxRetention",
        "xFilesFactor",
        "archives",
        "fileSize",
        "nope",
    ] {
        compare("info", "whisper-info", &[&data, field], false, true);
    }
    compare("dump", "whisper-dump", &[&data], false, true);
    compare("dump", "whisper-dump", &[&data, "--pretty"], true, true);
    compare(
        "dump",
        "whisper-dump",
        &[&data, "--pretty", "-t", "%Y-%m-%d %H:%M:%S"],
        true,
        true,
    );

    let (a, b) = ((now - 5000).to_string(), (now - 1000).to_string());
    let (c, d) = ((now - 50_000).to_string(), (now - 20_000).to_string());
    let (e, g) = ((now - 6 * 86400).to_string(), (now - 86400).to_string());
    let ranges: [&[&str]; 5] = [
        &[],
        &["--from", &a, "--until", &b],
        &["--from", &c, "--until", &d],
        &["--from", &e, "--until", &g],
        &["--from", &a],
    ];
    for range in ranges {
        for extra in [
            &[][..],
            &["--json"],
            &["--drop", "nulls"],
            &["--drop", "zeroes", "--json"],
            &["--drop", "empty"],
            &["--pretty"],
            &["--pretty", "--time-format", "%H:%M"],
        ] {
            let mut args = vec![data.as_str()];
            args.extend_from_slice(range);
            args.extend_from_slice(extra);
            compare("fetch", "whisper-fetch", &args, true, true);
        }
    }
    // Fetch errors: from after until, a range wholly in the future, a missing file.
    let (future, later) = ((now + 1000).to_string(), (now + 2000).to_string());
    compare(
        "fetch",
        "whisper-fetch",
        &[&data, "--from", &b, "--until", &a],
        false,
        true,
    );
    compare(
        "fetch",
        "whisper-fetch",
        &[&data, "--from", &future, "--until", &later],
        false,
        true,
    );
    let missing = p("missing.wsp");
    compare("fetch", "whisper-fetch", &[&missing], false, true);
    compare("dump", "whisper-dump", &[&missing], false, true);
    // (whisper-set-aggregation-method.py adds its --help text to stdout here; we do not.)
    let ours = run("ours", &["set-aggregation", &missing, "max"], false);
    let theirs = run("whisper-set-aggregation-method", &[&missing, "max"], false);
    assert_eq!(
        (ours.stderr.lines().next(), ours.code),
        (theirs.stderr.lines().next(), theirs.code)
    );
    assert!(!Path::new(&missing).exists());
    // A corrupt file.
    let corrupt = p("corrupt.wsp");
    std::fs::write(&corrupt, b"\x00\x00\x00\x09garbage").unwrap();
    compare("info", "whisper-info", &[&corrupt], false, true);
    compare("fetch", "whisper-fetch", &[&corrupt], false, true);

    // whisper set-aggregation-method: output and the bytes it leaves.
    let original = std::fs::read(&data).unwrap();
    let target = p("agg.wsp");
    for args in [
        vec!["max"],
        vec!["sum", "0.2"],
        vec!["last", "0"],
        vec!["avg_zero", " 1 "],
        vec!["median"],
        vec!["sum", "abc"],
        vec!["sum", "2"],
        vec!["sum", "--", "-0.5"],
    ] {
        let mut full = vec![target.as_str()];
        full.extend(args);
        compare_changing(
            "set-aggregation",
            "whisper-set-aggregation-method",
            &full,
            Path::new(&target),
            Some(&original),
        );
    }
}
