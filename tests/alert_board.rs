//! The board (`/`) and a rule's page (`/alerts/<slug>`) in real headless Chromium (Debian's
//! `chromium`), against the server started in-process with 300 rules checked every second and
//! points pushed over the carbon plaintext port: CRIT, WARN, OK, PENDING and NODATA rules at
//! once. One 1280×900 screenshot must show all 300 squares (counted as coloured blobs of a
//! square's size in the PNG); the DOM must order them worst first, group them by a label,
//! filter them by state and by name, and carry the 24 h chart and the rule page's series
//! table and timeline. A missing chromium FAILS these tests.
//!
//! Mail is pointed at a closed port: sending fails and is only logged, which is all a board
//! test needs.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use carbonhound::config::Settings;
use carbonhound::server::{self, Running};
use common::{chromium, push};

const RULES: usize = 300;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What rule `i` is made to be: its state on the board.
fn expected_state(i: usize) -> &'static str {
    match i % 8 {
        0 | 1 => "crit",
        2 => "warn",
        3..=5 => "ok",
        6 => "nodata",
        _ => "pending",
    }
}

/// Notices (drawn as circles): a few of the OK rules.
fn is_notice(i: usize) -> bool {
    i % 40 == 35
}

fn team(i: usize) -> Option<&'static str> {
    (i % 10 != 0).then(|| ["web", "db", "infra"][i % 3])
}

/// 300 threshold rules; rule 0 has three series (crit, warn, ok), the others one each.
fn rules_file() -> String {
    let mut s = String::new();
    for i in 0..RULES {
        let target = if i == 0 {
            "board.multi.*".to_string()
        } else {
            format!("board.host{i:03}.load")
        };
        s.push_str(&format!(
            "[[alert]]\nname = \"svc{i:03} load\"\ntarget = \"{target}\"\ndirection = \"above\"\nwarn = 50\ncrit = 90\n"
        ));
        if expected_state(i) == "pending" {
            s.push_str("for = \"1h\"\n");
        }
        if expected_state(i) == "nodata" {
            // A target that matches nothing is NODATA once no_data_after has passed.
            s.push_str("no_data_after = \"1s\"\n");
        }
        if is_notice(i) {
            s.push_str("type = \"notice\"\n");
        }
        if let Some(t) = team(i) {
            s.push_str(&format!("labels = {{ team = \"{t}\" }}\n"));
        }
        s.push('\n');
    }
    s
}

fn points(t: i64) -> String {
    let mut lines = String::new();
    for (series, v) in [("a", 95.0), ("b", 60.0), ("c", 10.0)] {
        lines.push_str(&format!("board.multi.{series} {v} {t}\n"));
    }
    for i in 1..RULES {
        let v = match expected_state(i) {
            "crit" | "pending" => 95.0,
            "warn" => 60.0,
            "ok" => 10.0,
            _ => continue,
        };
        lines.push_str(&format!("board.host{i:03}.load {v} {t}\n"));
    }
    lines
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn settings(dir: &Path) -> Settings {
    let mut s = common::alert_settings(dir, closed_port(), "board.toml", &rules_file());
    s.smtp.timeout = Duration::from_secs(2);
    s
}

fn get(running: &Running, path: &str) -> (u16, String) {
    let url = format!("http://{}{}", running.addrs.http, path);
    match ureq::get(&url).call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// Rules per state in /api/alerts.
fn states(running: &Running) -> BTreeMap<String, usize> {
    let (status, body) = get(running, "/api/alerts");
    assert_eq!(status, 200);
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut m = BTreeMap::new();
    for r in j["rules"].as_array().unwrap() {
        *m.entry(r["state"].as_str().unwrap_or("unchecked").to_string())
            .or_insert(0) += 1;
    }
    m
}

fn wanted_states() -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for i in 0..RULES {
        *m.entry(expected_state(i).to_string()).or_insert(0) += 1;
    }
    m
}

fn dump_dom(url: &str, profile: &Path) -> String {
    String::from_utf8(chromium(&["--dump-dom", url], profile).stdout).unwrap()
}

/// The decoded screenshot: width, height and RGB pixels.
struct Image {
    w: usize,
    h: usize,
    rgb: Vec<(u8, u8, u8)>,
}

fn decode(png_bytes: &[u8]) -> Image {
    let mut reader = png::Decoder::new(png_bytes).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let rgb = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| (p[0], p[1], p[2]))
        .collect();
    Image {
        w: info.width as usize,
        h: info.height as usize,
        rgb,
    }
}

/// Blobs of `rgb` (within 4 per channel) shaped like one rule's mark: a bounding box of
/// `min..=max` pixels each way, at least 60 % of it filled (a square or a circle, not a
/// ring or a bar of a chart).
fn count_blobs(img: &Image, rgb: (u8, u8, u8), min: usize, max: usize) -> usize {
    let near = |p: (u8, u8, u8)| {
        p.0.abs_diff(rgb.0) <= 4 && p.1.abs_diff(rgb.1) <= 4 && p.2.abs_diff(rgb.2) <= 4
    };
    let mut seen = vec![false; img.w * img.h];
    let mut blobs = 0;
    for start in 0..img.rgb.len() {
        if seen[start] || !near(img.rgb[start]) {
            continue;
        }
        let (mut x0, mut x1, mut y0, mut y1, mut n) = (usize::MAX, 0, usize::MAX, 0, 0);
        let mut stack = vec![start];
        seen[start] = true;
        while let Some(i) = stack.pop() {
            let (x, y) = (i % img.w, i / img.w);
            (x0, x1, y0, y1, n) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y), n + 1);
            let mut visit = |j: usize| {
                if !seen[j] && near(img.rgb[j]) {
                    seen[j] = true;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < img.w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - img.w);
            }
            if y + 1 < img.h {
                visit(i + img.w);
            }
        }
        let (bw, bh) = (x1 - x0 + 1, y1 - y0 + 1);
        if (min..=max).contains(&bw) && (min..=max).contains(&bh) && n * 10 >= bw * bh * 6 {
            blobs += 1;
        }
    }
    blobs
}

/// `(state class, slug)` of every square, in page order.
fn squares(dom: &str) -> Vec<(String, String)> {
    let re = regex::Regex::new(r#"<a class="rule state-([a-z]+)[^"]*" id="rule-([^"]+)""#).unwrap();
    re.captures_iter(dom)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

fn rank(state: &str) -> i32 {
    ["ok", "pending", "warn", "nodata", "crit", "error"]
        .iter()
        .position(|s| *s == state)
        .map(|p| p as i32)
        .unwrap_or(-1)
}

fn index_of(slug: &str) -> usize {
    slug.strip_prefix("svc")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("unexpected slug {slug}"))
}

#[test]
fn three_hundred_rules_on_one_screen_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let running = rt.block_on(server::start(settings(dir.path()))).unwrap();
    push(&running, &points(now()));
    let want = wanted_states();
    let t0 = Instant::now();
    loop {
        let got = states(&running);
        if got == want {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "states {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // One more round so that the board's sample counts them all.
    std::thread::sleep(Duration::from_millis(1500));

    let profile = dir.path().join("chromium-profile");
    let base = format!("http://{}", running.addrs.http);

    // The DOM: 300 squares with their states, worst first.
    let dom = dump_dom(&format!("{base}/"), &profile);
    let sq = squares(&dom);
    assert_eq!(sq.len(), RULES, "squares in the DOM");
    for (state, slug) in &sq {
        let i = index_of(slug);
        assert_eq!(state, expected_state(i), "{slug}");
    }
    let ranks: Vec<i32> = sq.iter().map(|(s, _)| rank(s)).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] >= w[1]),
        "failing first: {:?}",
        sq.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    assert_eq!(sq[0].1, "svc000-load", "ties by name");
    assert_eq!(
        dom.matches("<a class=\"rule state-ok notice\"").count(),
        (0..RULES).filter(|i| is_notice(*i)).count(),
        "notices are marked"
    );
    assert_eq!(
        dom.matches("state-pending pending-crit").count(),
        want["pending"],
        "pending rules are outlined by the level they wait on"
    );
    assert!(
        dom.contains("title=\"svc001 load: CRIT 95\""),
        "hover title"
    );
    assert!(dom.contains("http-equiv=\"refresh\""), "auto-refresh");
    assert!(
        dom.contains(&format!("<span>{RULES} rules</span>")),
        "summary"
    );
    assert!(
        dom.contains(&format!("{} CRIT</a>", want["crit"])),
        "summary counts"
    );
    // The 24 h chart, drawn after the rules failed: a CRIT area (and WARN, NODATA).
    let chart = dom
        .split("<div id=\"chart-24h\">")
        .nth(1)
        .expect("the 24 h chart")
        .split("</div>")
        .next()
        .unwrap();
    assert!(chart.starts_with("<svg"), "{chart}");
    for class in ["s-crit", "s-warn", "s-nodata"] {
        assert!(
            chart.contains(&format!("<path class=\"area {class}\" d=\"M")),
            "{class} in {chart}"
        );
    }
    assert!(!chart.contains("s-error"), "no rule was in ERROR");
    assert!(dom.contains("<div id=\"chart-7d\"><svg"), "the 7 d chart");

    // One screenshot shows every square, in its colour.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("alert-board.png");
    chromium(
        &[
            "--window-size=1280,900",
            &format!("--screenshot={}", shot.display()),
            &format!("{base}/"),
        ],
        &profile,
    );
    let img = decode(&std::fs::read(&shot).unwrap());
    assert_eq!((img.w, img.h), (1280, 900));
    let mut seen = 0;
    for (state, rgb, min, max) in [
        ("crit", (0xc6, 0x28, 0x28), 24, 30),
        ("warn", (0xff, 0xa0, 0x00), 24, 30),
        ("ok", (0x2e, 0x7d, 0x32), 24, 30),
        ("nodata", (0x9e, 0x9e, 0x9e), 24, 30),
        // A pending square's light fill inside its 3 px outline.
        ("pending", (0xff, 0xf3, 0xe0), 20, 24),
    ] {
        let n = count_blobs(&img, rgb, min, max);
        assert_eq!(
            n,
            want[state],
            "{state} squares in the screenshot {}",
            shot.display()
        );
        seen += n;
    }
    assert_eq!(seen, RULES, "all squares on one 1280×900 screen");

    // Grouped by team: one heading per value, rules without the label under "(none)", last.
    let dom = dump_dom(&format!("{base}/?group=team"), &profile);
    let re = regex::Regex::new(r#"<h2 class="group">team = ([^ <]+) "#).unwrap();
    let heads: Vec<String> = re.captures_iter(&dom).map(|c| c[1].to_string()).collect();
    assert_eq!(heads, ["db", "infra", "web", "(none)"], "group headings");
    assert_eq!(squares(&dom).len(), RULES);
    assert!(dom.contains("<option value=\"team\" selected=\"\">team</option>"));
    // Inside a group, the squares are those of its team.
    let infra = dom
        .split("team = infra")
        .nth(1)
        .unwrap()
        .split("<section")
        .next()
        .unwrap();
    for (_, slug) in squares(infra) {
        assert_eq!(team(index_of(&slug)), Some("infra"), "{slug}");
    }

    // Only CRIT; then CRIT and WARN (comma list).
    let dom = dump_dom(&format!("{base}/?state=crit"), &profile);
    let sq = squares(&dom);
    assert_eq!(sq.len(), want["crit"]);
    assert!(sq.iter().all(|(s, _)| s == "crit"));
    assert!(
        dom.contains("value=\"crit\" checked=\"\""),
        "the filter shows as set"
    );
    let sq = squares(&dump_dom(&format!("{base}/?state=crit,warn"), &profile));
    assert_eq!(sq.len(), want["crit"] + want["warn"]);

    // A name/target filter, in any case, works without script.
    let dom = dump_dom(&format!("{base}/?q=HOST01"), &profile);
    let mut slugs: Vec<usize> = squares(&dom).iter().map(|(_, s)| index_of(s)).collect();
    slugs.sort();
    assert_eq!(slugs, (10..20).collect::<Vec<_>>());
    assert!(
        dom.contains("value=\"HOST01\""),
        "the search box keeps the filter"
    );

    // The rule page: state badge, series worst first with their states, the timeline, the
    // history and the three graphs.
    let dom = dump_dom(&format!("{base}/alerts/svc000-load"), &profile);
    assert!(
        dom.contains("<span class=\"badge state-crit\" id=\"state\">CRIT</span>"),
        "{dom}"
    );
    assert!(dom.contains("<td id=\"levels\">"), "levels");
    assert!(!dom.contains("id=\"labels\""), "svc000 has no labels");
    assert!(
        dom.contains("<td>last over 10 min; no data → alert</td>"),
        "reduce, window, no for"
    );
    let (_, svc001) = get(&running, "/alerts/svc001-load");
    assert!(
        svc001.contains("<td id=\"labels\">team=db</td>"),
        "{svc001}"
    );
    assert!(
        svc001.contains("<td id=\"levels\">warn 50, crit 90 (above)</td>"),
        "{svc001}"
    );
    let table = dom
        .split("<table class=\"series\" id=\"series\">")
        .nth(1)
        .expect("series table")
        .split("</table>")
        .next()
        .unwrap();
    let re = regex::Regex::new(r#"<tr class="series-([a-z]+)"><td>([^<]+)</td><td><span class="badge state-[a-z]+">([A-Z]+)</span></td><td class="num">([^<]+)</td>"#).unwrap();
    let rows: Vec<(String, String, String, String)> = re
        .captures_iter(table)
        .map(|c| (c[1].into(), c[2].into(), c[3].into(), c[4].into()))
        .collect();
    assert_eq!(
        rows,
        [
            (
                "crit".into(),
                "board.multi.a".into(),
                "CRIT".into(),
                "95".into()
            ),
            (
                "warn".into(),
                "board.multi.b".into(),
                "WARN".into(),
                "60".into()
            ),
            (
                "ok".into(),
                "board.multi.c".into(),
                "OK".into(),
                "10".into()
            ),
        ],
        "{table}"
    );
    let timeline = dom
        .split("<svg class=\"timeline\" id=\"timeline\"")
        .nth(1)
        .expect("the timeline")
        .split("</svg>")
        .next()
        .unwrap();
    assert!(
        timeline.contains("<rect class=\"seg s-crit\""),
        "{timeline}"
    );
    assert!(dom.contains("<table class=\"history\" id=\"history\">"));
    assert!(dom.contains("<tr class=\"event-crit\">"), "history");
    for g in ["1h", "24h", "7d"] {
        assert!(dom.contains(&format!("<img id=\"graph-{g}\"")), "graph {g}");
    }
    // Painted: the CRIT badge and series badge, the series' graphs (blue #1f5fa8).
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("alert-board-rule.png");
    chromium(
        &[
            "--window-size=1280,1400",
            &format!("--screenshot={}", shot.display()),
            &format!("{base}/alerts/svc000-load"),
        ],
        &profile,
    );
    let img = decode(&std::fs::read(&shot).unwrap());
    let count = |rgb: (u8, u8, u8)| {
        img.rgb
            .iter()
            .filter(|p| {
                p.0.abs_diff(rgb.0) <= 4 && p.1.abs_diff(rgb.1) <= 4 && p.2.abs_diff(rgb.2) <= 4
            })
            .count()
    };
    assert!(
        count((0xc6, 0x28, 0x28)) > 500,
        "CRIT badges ({})",
        shot.display()
    );
    assert!(
        count((0xff, 0xa0, 0x00)) > 200,
        "the WARN series' badge ({})",
        shot.display()
    );
    let grouped = Path::new(env!("CARGO_TARGET_TMPDIR")).join("alert-board-grouped.png");
    chromium(
        &[
            "--window-size=1280,900",
            &format!("--screenshot={}", grouped.display()),
            &format!("{base}/?group=team"),
        ],
        &profile,
    );
    let img = decode(&std::fs::read(&grouped).unwrap());
    assert_eq!(
        count_blobs(&img, (0xc6, 0x28, 0x28), 24, 30),
        want["crit"],
        "grouped, every CRIT square still on one screen ({})",
        grouped.display()
    );

    let (_, svc007) = get(&running, "/alerts/svc007-load");
    assert!(
        svc007.contains("last over 10 min, for 1 h;"),
        "for is shown"
    );
    assert!(
        svc007.contains("id=\"state\">PENDING</span>"),
        "pending badge"
    );

    let (status, _) = get(&running, "/alerts/no-such-rule");
    assert_eq!(status, 404);
    rt.block_on(running.shutdown());
}
