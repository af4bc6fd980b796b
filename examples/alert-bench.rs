//! W-alert: the alert scheduler on the 20,000-metric bench data set.
//!
//! 10,000 rules — 9,900 on one series each (`bench.hNNN.mNN`) and 100 globs over 200 series
//! each (`bench.hNN*.m*`) — checked in-process by the real scheduler against whisper files,
//! state and history in sled, exactly as `carbonhound serve` runs them. Reports the median
//! of several check cycles (each rule evaluated, reduced, stepped and stored), the board's
//! publish, and the time to compose 100 alert mails with their two PNG graphs each.
//!
//! ```sh
//! cargo run --release --example alert-bench                    # writes its own data set
//! cargo run --release --example alert-bench -- --cycles 7 --keep
//! ```
//!
//! The data set has the ingest benchmark's shape (1,000 hosts × 20 metrics, `10s:6h,1m:7d`,
//! 360 points each, values 0–999), written straight through the store's persisters into a
//! temporary folder (`--keep` leaves it). Levels are set so that about 1 % of single-series
//! rules and every glob rule fail: a steady cycle has a few hundred failing series, as a
//! bad day would.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use carbonhound::alert::{AlertConfig, Board, Clock, MailKind, Scheduler, StateDb};
use carbonhound::config::{parse_schemas, Settings, StorageRules};
use carbonhound::store::{Persisters, Store};
use carbonhound::whisper::Preallocation;

const HOSTS: usize = 1_000;
const PER_HOST: usize = 20;
const POINTS: i64 = 360;
const STEP: i64 = 10;

fn value(m: usize, i: i64) -> f64 {
    ((m as u64)
        .wrapping_mul(7919)
        .wrapping_add(i as u64 * 104_729)
        % 1_000) as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut cycles = 5usize; // at most 5: the sixth would reach the +5 min reminders
    let mut keep = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--cycles" => {
                cycles = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(5)
                    .clamp(1, 5)
            }
            "--keep" => keep = true,
            other => {
                eprintln!("unknown argument {other}; use --cycles N, --keep");
                std::process::exit(2);
            }
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("carbonhound-alert-bench-")
        .tempdir()
        .expect("a temporary folder");
    let root: PathBuf = dir.path().to_path_buf();
    let now = carbonhound::store::unix_now() / STEP * STEP;

    // The data set.
    let t0 = Instant::now();
    let rules = StorageRules::new(
        parse_schemas(
            "[bench]\npattern = .*\nretentions = 10s:6h,1m:7d\n",
            "bench",
        )
        .unwrap(),
        vec![],
    );
    let whisper = root.join("data/whisper");
    let store = Arc::new(
        Store::open(
            &whisper,
            rules.clone(),
            10_000_000,
            Preallocation::Sparse,
            0,
        )
        .expect("a store"),
    );
    for m in 0..HOSTS * PER_HOST {
        let name = format!("bench.h{:03}.m{:02}", m / PER_HOST, m % PER_HOST);
        for i in 0..POINTS {
            store.insert(&name, now - (POINTS - 1 - i) * STEP, value(m, i));
        }
    }
    Persisters::start(store.clone(), 2, Duration::from_millis(10)).flush_and_stop();
    drop(store);
    let store =
        Arc::new(Store::open(&whisper, rules, 100_000, Preallocation::Sparse, 0).expect("a store"));
    eprintln!(
        "data: {} metrics × {POINTS} points written in {:.1} s",
        HOSTS * PER_HOST,
        t0.elapsed().as_secs_f64()
    );

    // The rules.
    let rules_dir = root.join("alerts.d");
    std::fs::create_dir_all(&rules_dir).unwrap();
    let mut text = String::new();
    for r in 0..9_900 {
        let m = r * 2;
        text.push_str(&format!(
            "[[alert]]\nname = \"single {r}\"\ntarget = \"bench.h{:03}.m{:02}\"\ndirection = \"above\"\nwarn = 980\ncrit = 990\n\n",
            m / PER_HOST,
            m % PER_HOST
        ));
    }
    for g in 0..100 {
        text.push_str(&format!(
            "[[alert]]\nname = \"glob {g}\"\ntarget = \"bench.h{g:02}*.m*\"\ndirection = \"above\"\nwarn = 980\ncrit = 990\nlabels = {{ team = \"t{}\" }}\n\n",
            g % 7
        ));
    }
    std::fs::write(rules_dir.join("bench.toml"), text).unwrap();

    let mut settings = Settings::defaults();
    settings.data_dir = root.join("data");
    settings.alerting.rules_dir = rules_dir;
    settings.alerting.templates_dir = root.join("no-templates");
    settings.alerting.base_url = "http://carbonhound.bench:8080".into();
    settings.alerting.interval = Duration::from_secs(60);
    let cfg = AlertConfig::from_settings(&settings);
    let clock_now = Arc::new(AtomicI64::new(now));
    let c = clock_now.clone();
    let clock: Clock = Arc::new(move || c.load(Ordering::SeqCst));
    let state_dir = settings.state_dir();
    std::fs::create_dir_all(&state_dir).unwrap();
    let db = StateDb::open(&state_dir).expect("the state database");
    let t_load = Instant::now();
    let mut sched = Scheduler::new(cfg, store.clone(), db, clock, Arc::new(Board::default()));
    eprintln!(
        "rules: {} read in {:.2} s",
        sched.rules().rules.len(),
        t_load.elapsed().as_secs_f64()
    );

    // The first cycle finds every failure and composes its mail; deliver them all, so the
    // cycles measured are steady ones (nothing new to mail).
    let t_first = Instant::now();
    let pending = sched.check_all();
    let first = t_first.elapsed().as_secs_f64();
    let mails = pending.len();
    let results = pending.into_iter().map(|p| (p, Ok(()))).collect();
    sched.settle(results);
    sched.publish();
    eprintln!("first cycle: {first:.2} s, {mails} mails composed");

    let mut check = Vec::new();
    let mut publish = Vec::new();
    for k in 1..=cycles {
        // 50 s apart (a rule checked every [alerting].interval of 60 s is due each time, with
        // the scheduler's half-tick of slack), so no reminder (+5 min) falls due in 5 cycles.
        clock_now.store(now + 50 * k as i64, Ordering::SeqCst);
        let t = Instant::now();
        let p = sched.check_all();
        check.push(t.elapsed().as_secs_f64());
        assert!(
            p.is_empty(),
            "a steady cycle mails nothing ({} mails, the first {:?} {:?})",
            p.len(),
            p.first().map(|p| p.kind),
            p.first().map(|p| &p.subject)
        );
        sched.settle(Vec::new());
        let t = Instant::now();
        sched.publish();
        publish.push(t.elapsed().as_secs_f64());
        assert_eq!(sched.round_stats().checked, 10_000);
    }
    let failing: usize = sched
        .rules()
        .rules
        .iter()
        .filter_map(|r| sched.state(&r.name))
        .map(|s| s.series.values().filter(|x| x.state.is_failing()).count())
        .sum();

    // Composing 100 alert mails with their graphs.
    let at = clock_now.load(Ordering::SeqCst);
    let failing_rules: Vec<_> = sched
        .rules()
        .rules
        .iter()
        .filter_map(|r| sched.state(&r.name).map(|s| (r.clone(), s)))
        .filter(|(_, s)| s.state.is_failing())
        .take(100)
        .collect();
    let mut compose = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        for (r, s) in &failing_rules {
            let p = sched.compose(r.clone(), s.clone(), MailKind::Fire, at);
            assert!(p.message.is_ok(), "{:?}", p.message.err());
        }
        compose.push(t.elapsed().as_secs_f64());
    }
    println!("W-alert: 10,000 rules (9,900 single-series, 100 globs × 200 series), {failing} failing series");
    println!(
        "check cycle: median {:.3} s over {cycles} cycles (runs: {})",
        median(&mut check.clone()),
        check
            .iter()
            .map(|x| format!("{x:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "publish (board snapshot + samples + self metrics): median {:.3} s",
        median(&mut publish)
    );
    println!(
        "compose {} mails with 2 graphs each: median {:.3} s over 3 runs (runs: {})",
        failing_rules.len(),
        median(&mut compose.clone()),
        compose
            .iter()
            .map(|x| format!("{x:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if keep {
        let kept = dir.keep();
        println!("kept {}", kept.display());
    }
}
