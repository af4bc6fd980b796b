//! The render memory budget (`[query] max_memory`) holds the process to it: 20,000 series of
//! 360 points, the six `target=test.*` request (691 MB of series data, 872 MB of
//! JSON in graphite-web's form) alone and three at once, and requests that fit, alone and
//! three at once; the server's high-water mark (`VmHWM` in `/proc/<pid>/status`) stays under
//! the budget + 100 MiB throughout. Answers that fit are streamed and complete.

mod common;

use std::net::SocketAddr;
use std::path::Path;

use carbonhound::whisper::WhisperFile;
use carbonhound::whisper::{create, AggregationMethod, CreateOptions, Preallocation, Retention};
use common::{enc, http_get, now, python, wait_for, Server};

const SERIES: usize = 20_000;
const POINTS: i64 = 360;
const BUDGET_MIB: u64 = 256;

/// Writes `test.m00000` … as whisper files of `10s:2h`, each holding the hour before `now`.
fn write_files(whisper: &Path, now: i64) {
    let dir = whisper.join("test");
    std::fs::create_dir_all(&dir).unwrap();
    let retention = [Retention {
        seconds_per_point: 10,
        points: 2 * POINTS as u32,
    }];
    let opts = CreateOptions {
        x_files_factor: 0.5,
        aggregation_method: AggregationMethod::Average,
        preallocation: Preallocation::Sparse,
    };
    let last = now - now % 10;
    for m in 0..SERIES {
        let path = dir.join(format!("m{m:05}.wsp"));
        create(&path, &retention, opts).unwrap();
        let points: Vec<(i64, f64)> = (0..POINTS)
            .map(|i| (last - 10 * i, (m as i64 * 1000 + i) as f64))
            .collect();
        WhisperFile::open_rw(&path)
            .unwrap()
            .update_many(&points, now)
            .unwrap();
    }
}

fn high_water_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kib / 1024
}

/// `targets` × `test.*` over the hour of points before `t` (epoch seconds).
fn render(http: SocketAddr, t: i64, targets: usize, format: &str) -> (u16, String, Vec<u8>) {
    let mut q = format!(
        "/render?format={format}&from={}&until={}",
        t - 10 * POINTS,
        t + 10
    );
    for _ in 0..targets {
        q.push_str(&format!("&target={}", enc("test.*")));
    }
    http_get(http, &q)
}

#[test]
fn renders_stay_within_the_memory_budget_and_answers_that_fit_stream_whole() {
    let dir = tempfile::tempdir().unwrap();
    let t = now();
    let clock = std::time::Instant::now();
    write_files(&dir.path().join("data").join("whisper"), t);
    eprintln!("{SERIES} files written in {:?}", clock.elapsed());
    std::fs::write(
        dir.path().join("schemas.conf"),
        "[all]\npattern = .*\nretentions = 10s:2h\n",
    )
    .unwrap();
    let schemas = dir.path().join("schemas.conf").display().to_string();
    let budget = format!("{BUDGET_MIB}MiB");
    let server = Server::start_in(
        dir.path(),
        &[
            ("CARBONHOUND_CARBON__SCHEMAS", schemas.as_str()),
            ("CARBONHOUND_QUERY__MAX_MEMORY", budget.as_str()),
            ("CARBONHOUND_CARBON__STATS_INTERVAL", "0s"),
        ],
    );
    let pid = server.child.as_ref().unwrap().id();
    wait_for(60, "the index to hold every series", || {
        let nodes = server.get_json("/metrics/find?query=test.*&format=completer");
        (nodes["metrics"].as_array().map_or(0, Vec::len) == SERIES).then_some(())
    });
    eprintln!("indexed after {:?}", clock.elapsed());
    let limit = BUDGET_MIB + 100;
    let http = server.http;

    // The request: more than the whole budget, refused at once with what to do.
    let (status, _, body) = render(http, t, 6, "json");
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("query.max_memory"), "{text}");
    assert!(text.contains("fewer series"), "{text}");
    // Three at once: all refused, nothing taken.
    let refused = std::thread::scope(|s| {
        let all: Vec<_> = (0..3)
            .map(|_| s.spawn(move || render(http, t, 6, "json").0))
            .collect();
        all.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(refused, [413, 413, 413]);
    eprintln!("HWM {} MiB at {:?}", high_water_mib(pid), clock.elapsed());
    assert!(high_water_mib(pid) < limit, "{} MiB", high_water_mib(pid));

    // One target fits (115 MB of series): the whole answer arrives, streamed.
    let (status, ctype, body) = render(http, t, 1, "json");
    assert_eq!(
        status,
        200,
        "{}",
        String::from_utf8_lossy(&body[..body.len().min(500)])
    );
    assert_eq!(ctype, "application/json");
    let json: serde_json::Value = serde_json::from_slice(&body).expect("complete JSON");
    let series = json.as_array().unwrap();
    assert_eq!(series.len(), SERIES);
    assert_eq!(series[7]["target"], "test.m00007");
    let points = series[7]["datapoints"].as_array().unwrap();
    assert!(points.len() >= POINTS as usize, "{}", points.len());
    let known: Vec<f64> = points.iter().filter_map(|p| p[0].as_f64()).collect();
    assert_eq!(known.len(), POINTS as usize);
    assert_eq!(
        known.iter().sum::<f64>(),
        (0..POINTS).map(|i| (7000 + i) as f64).sum::<f64>()
    );
    drop(json);
    eprintln!("HWM {} MiB at {:?}", high_water_mib(pid), clock.elapsed());
    assert!(high_water_mib(pid) < limit, "{} MiB", high_water_mib(pid));

    // Three at once: two fit the budget together, the third waits its turn (or, when the
    // other two outlast the wait, is told the budget is busy); none goes past the budget.
    let answers = std::thread::scope(|s| {
        let all: Vec<_> = (0..3)
            .map(|_| s.spawn(move || render(http, t, 1, "json")))
            .collect();
        all.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let mut ok = 0;
    for (status, _, body) in &answers {
        match status {
            200 => {
                let v: serde_json::Value = serde_json::from_slice(body).expect("complete JSON");
                assert_eq!(v.as_array().unwrap().len(), SERIES);
                ok += 1;
            }
            503 => assert!(
                String::from_utf8_lossy(body).contains("busy"),
                "{}",
                String::from_utf8_lossy(body)
            ),
            s => panic!("status {s}: {}", String::from_utf8_lossy(body)),
        }
    }
    assert!(ok >= 2, "{ok} of 3 answered");
    drop(answers);
    eprintln!("HWM {} MiB at {:?}", high_water_mib(pid), clock.elapsed());
    assert!(high_water_mib(pid) < limit, "{} MiB", high_water_mib(pid));

    // CSV and pickle stream too; pickle read back by Python's own unpickler.
    let (status, _, csv) = render(http, t, 1, "csv");
    assert_eq!(status, 200);
    let rows = csv.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    assert!(rows >= SERIES * POINTS as usize, "{rows}");
    drop(csv);
    let (status, _, pickle) = render(http, t, 1, "pickle");
    assert_eq!(status, 200);
    let file = dir.path().join("answer.pickle");
    std::fs::write(&file, &pickle).unwrap();
    drop(pickle);
    let out = python(
        "import pickle, sys\n\
         s = pickle.load(open(sys.argv[1], 'rb'))\n\
         print(len(s), s[7]['name'], sum(v for v in s[7]['values'] if v is not None))",
        &[file.to_str().unwrap()],
    );
    let expected: i64 = (0..POINTS).map(|i| 7000 + i).sum();
    assert_eq!(out.trim(), format!("{SERIES} test.m00007 {expected}.0"));
    let hwm = high_water_mib(pid);
    eprintln!("high-water mark {hwm} MiB (budget {BUDGET_MIB} MiB)");
    assert!(hwm < limit, "{hwm} MiB");
}
