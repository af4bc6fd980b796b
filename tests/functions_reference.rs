//! The functions of the target language against graphite-web 1.1.8's own code.
//!
//! Python's `whisper` module writes a fixture of whisper files (gauges with nulls, counters
//! that wrap, ratios, a slower series, a daily-seasonal series for Holt-Winters, tagged
//! series, an empty file); `tests/support/graphite_functions.py` evaluates every target of
//! the corpus with graphite-web's `evaluateTarget` over those files, and carbonhound's store
//! and evaluator do the same. Names, path expressions, start/end/step, consolidation,
//! xFilesFactor, tags, graph options and values must agree (values within a relative 1e-9,
//! nulls exactly); a target graphite-web refuses must be refused here too.
//!
//! Needs /usr/bin/python3 with graphite-web 1.1.8 and whisper (Debian's graphite-web and
//! python3-whisper): the test fails when they are missing.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use carbonhound::config::{parse_schemas, StorageRules};
use carbonhound::query::{evaluate, QueryLimits, Request, Series};
use carbonhound::store::{unix_now, Store};
use carbonhound::whisper::Preallocation;
use serde_json::{json, Value as Json};

const DAY: i64 = 86_400;

/// A deterministic generator for fixture values (the same every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Metric {
    name: &'static str,
    step: i64,
    points: i64,
    values: Vec<(i64, f64)>,
}

/// The fixture, relative to `base` (a UTC midnight at least a day before now).
fn fixture(base: i64) -> Vec<Metric> {
    let mut rng = Lcg(42);
    let mut metrics = Vec::new();
    let minute_range = |from: i64, to: i64| (from..to).step_by(60);
    // Gauges at 60 s: three days before base to one day after.
    let mut a = Vec::new();
    let mut b = Vec::new();
    let mut c = Vec::new();
    let mut p = Vec::new();
    for t in minute_range(base - 3 * DAY, base + DAY) {
        let x = (t - base) as f64 / 3600.0;
        if rng.next() > 0.05 {
            a.push((t, (x * 0.7).sin() * 20.0 + rng.next() * 5.0 - 4.0));
        }
        if rng.next() > 0.2 {
            b.push((t, 1000.0 + rng.next().powi(3) * 1e6));
        }
        if rng.next() > 0.1 {
            c.push((t, (rng.next() * 4.0).floor()));
        }
        let r = rng.next();
        p.push((
            t,
            if r < 0.03 {
                0.0
            } else if r < 0.06 {
                1.0
            } else if r < 0.08 {
                0.5
            } else {
                rng.next()
            },
        ));
    }
    metrics.push(Metric {
        name: "ref.gauge.a",
        step: 60,
        points: 15 * 1440,
        values: a,
    });
    metrics.push(Metric {
        name: "ref.gauge.b",
        step: 60,
        points: 15 * 1440,
        values: b,
    });
    metrics.push(Metric {
        name: "ref.gauge.c",
        step: 60,
        points: 15 * 1440,
        values: c,
    });
    metrics.push(Metric {
        name: "ref.ratio.p",
        step: 60,
        points: 15 * 1440,
        values: p,
    });
    // Counters: x wraps at 1000 and never misses a point; y resets and has gaps.
    let (mut x, mut y) = (0.0f64, 0.0f64);
    let mut cx = Vec::new();
    let mut cy = Vec::new();
    for t in minute_range(base - DAY, base + DAY) {
        x += (rng.next() * 40.0).floor();
        if x > 1000.0 {
            x -= 1001.0;
        }
        cx.push((t, x));
        y += rng.next() * 10.0;
        if rng.next() < 0.01 {
            y = 0.0;
        }
        if rng.next() > 0.1 {
            cy.push((t, y));
        }
    }
    metrics.push(Metric {
        name: "ref.counter.x",
        step: 60,
        points: 15 * 1440,
        values: cx,
    });
    metrics.push(Metric {
        name: "ref.counter.y",
        step: 60,
        points: 15 * 1440,
        values: cy,
    });
    // A 300 s series.
    let z = (base - DAY..base + DAY)
        .step_by(300)
        .map(|t| (t, 1.0 + rng.next() * 3.0))
        .collect();
    metrics.push(Metric {
        name: "ref.slow.z",
        step: 300,
        points: 30 * 288,
        values: z,
    });
    // Ten days of a daily season at 600 s for Holt-Winters.
    let mut hw = Vec::new();
    for t in (base - 10 * DAY..base + DAY).step_by(600) {
        if rng.next() > 0.02 {
            let phase = (t - base) as f64 / DAY as f64 * std::f64::consts::TAU;
            hw.push((t, 100.0 + 40.0 * phase.sin() + rng.next() * 10.0));
        }
    }
    metrics.push(Metric {
        name: "ref.hw.daily",
        step: 600,
        points: 30 * 144,
        values: hw,
    });
    // Tagged series and an empty file.
    for (name, k) in [
        ("ref.tagged.cpu;dc=east;host=h1", 1.0),
        ("ref.tagged.cpu;dc=west;host=h2", 2.0),
    ] {
        let v = minute_range(base, base + DAY)
            .map(|t| (t, k * rng.next()))
            .collect();
        metrics.push(Metric {
            name,
            step: 60,
            points: 15 * 1440,
            values: v,
        });
    }
    metrics.push(Metric {
        name: "ref.empty.e",
        step: 60,
        points: 15 * 1440,
        values: Vec::new(),
    });
    metrics
}

struct Case {
    target: String,
    from: i64,
    until: i64,
    /// The request's `xFilesFactor` parameter.
    xff: f64,
}

/// The corpus: (target, from, until), times relative to `base`.
fn corpus(base: i64) -> Vec<Case> {
    let w = (base + 6 * 3600, base + 12 * 3600);
    let odd = (base + 6 * 3600 + 7 * 60 + 13, base + 11 * 3600 + 3 * 60);
    let day = (base, base + DAY - 600);
    let t = |h: i64| (base + h * 3600).to_string();
    let mut cases: Vec<(String, (i64, i64))> = Vec::new();
    let mut add = |target: &str, range: (i64, i64)| cases.push((target.to_string(), range));
    // Transform.
    for target in [
        "scale(ref.gauge.*, 2.5)",
        "scale(ref.gauge.a, 10)",
        "scaleToSeconds(ref.gauge.a, 1)",
        "scaleToSeconds(ref.gauge.b, 3600)",
        "offset(ref.gauge.a, -3)",
        "offsetToZero(ref.gauge.*)",
        "offsetToZero(ref.empty.e)",
        "derivative(ref.counter.x)",
        "derivative(ref.gauge.b)",
        "nonNegativeDerivative(ref.counter.*)",
        "nonNegativeDerivative(ref.counter.x, 1000)",
        "nonNegativeDerivative(ref.counter.x, 1000, 10)",
        "nonNegativeDerivative(ref.counter.x, minValue=5)",
        "nonNegativeDerivative(ref.counter.y, 1000)",
        "perSecond(ref.counter.*)",
        "perSecond(ref.counter.x, 1000)",
        "integral(ref.gauge.a)",
        "integralByInterval(ref.gauge.a, '1h')",
        "integralByInterval(ref.gauge.c, '90min')",
        "absolute(ref.gauge.a)",
        "log(ref.gauge.*)",
        "log(ref.gauge.b, 2)",
        "log(ref.gauge.b, 1)",
        "pow(ref.gauge.a, 2)",
        "pow(ref.gauge.a, 0.5)",
        "powSeries(ref.gauge.c, ref.ratio.p)",
        "powSeries(ref.gauge.a, ref.slow.z)",
        "squareRoot(ref.gauge.a)",
        "invert(ref.gauge.c)",
        "exp(ref.ratio.p)",
        "exp(ref.gauge.b)",
        "add(ref.gauge.a, 5.7)",
        "add(ref.gauge.a, -2)",
        "sigmoid(ref.gauge.a)",
        "logit(ref.ratio.p)",
        "round(ref.gauge.a)",
        "round(ref.gauge.a, 2)",
        "round(ref.gauge.b, -2)",
        "timeShift(ref.gauge.a, '1h')",
        "timeShift(ref.gauge.a, '+30min')",
        "timeShift(ref.gauge.*, '-1d', false)",
        "timeShift(ref.gauge.a, '1d', true, true)",
        "timeStack(ref.gauge.a, '1h', 0, 3)",
        "timeStack(ref.gauge.a, '30min', -1, 2)",
        "delay(ref.gauge.a, 3)",
        "delay(ref.gauge.a, -2)",
        "delay(ref.gauge.a, 0)",
        "summarize(ref.gauge.a, '1h')",
        "summarize(ref.gauge.a, '1h', 'avg')",
        "summarize(ref.gauge.*, '7min', 'max', true)",
        "summarize(ref.gauge.b, '1d', 'median')",
        "summarize(ref.gauge.c, '15min', 'count')",
        "summarize(ref.gauge.a, '13min', 'diff')",
        "summarize(ref.gauge.a, '13min', 'stddev', true)",
        "smartSummarize(ref.gauge.a, '20min')",
        "smartSummarize(ref.gauge.a, '1h', 'sum', 'hours')",
        "smartSummarize(ref.gauge.b, '1d', 'average', 'days')",
        "hitcount(ref.gauge.c, '10min')",
        "hitcount(ref.gauge.c, '1h', true)",
        "hitcount(ref.slow.z, '7min')",
        "transformNull(ref.gauge.*)",
        "transformNull(ref.gauge.b, -1)",
        "transformNull(ref.gauge.b, 0, ref.gauge.a)",
        "isNonNull(ref.gauge.b)",
        "keepLastValue(ref.gauge.b)",
        "keepLastValue(ref.gauge.b, 2)",
        "interpolate(ref.gauge.b)",
        "interpolate(ref.gauge.b, 1)",
        "minMax(ref.gauge.*)",
        "changed(ref.gauge.c)",
        "time('t.series')",
        "time('t.series', 300)",
        "sin('s.series', 3, 120)",
        "ref.gauge.a|movingAverage(5)|alias('piped')",
    ] {
        add(target, w);
    }
    for target in [
        "summarize(ref.gauge.a, '45min', 'last')",
        "summarize(ref.gauge.a, '45min', 'sum', true)",
        "smartSummarize(ref.gauge.a, '1h', 'sum', 'hours')",
        "smartSummarize(ref.gauge.a, '10min', 'max', 'minutes')",
        "hitcount(ref.gauge.c, '1h', true)",
        "hitcount(ref.gauge.c, '5min', true)",
        "hitcount(ref.gauge.c, '17min')",
        "integralByInterval(ref.gauge.a, '1h')",
        "movingAverage(ref.gauge.a, '10min')",
    ] {
        add(target, odd);
    }
    add(
        &format!("timeSlice(ref.gauge.a, '{}', '{}')", t(7), t(9)),
        w,
    );
    // (endSliceAt defaults to graphite-web's wall-clock now, which the two runs do not share.)
    add(
        &format!("timeSlice(ref.gauge.*, '{}', '{}')", t(8), t(30)),
        w,
    );
    add(
        &format!("linearRegression(ref.gauge.a, '{}', '{}')", t(1), t(5)),
        w,
    );
    add(&format!("verticalLine('{}', 'ev', 'red')", t(7)), w);
    add(&format!("verticalLine('{}')", t(2)), w);
    // Calculate.
    for target in [
        "movingAverage(ref.gauge.a, 5)",
        "movingAverage(ref.gauge.b, '15min')",
        "movingAverage(ref.gauge.b, 10, 0.5)",
        "movingAverage(ref.gauge.a, 0)",
        "movingAverage(ref.gauge.a, 100000)",
        "movingAverage(ref.slow.z, 3)",
        "movingAverage(scale(ref.gauge.a, 2), '10min')",
        "movingMedian(ref.gauge.a, 7)",
        "movingMedian(ref.gauge.b, '1h')",
        "movingSum(ref.gauge.c, 4)",
        "movingMin(ref.gauge.a, '10min')",
        "movingMax(ref.gauge.*, 3)",
        "movingWindow(ref.gauge.a, 6, 'stddev')",
        "movingWindow(ref.gauge.b, '30min', 'avg_zero', 0.3)",
        "movingWindow(ref.gauge.a, 5, 'range')",
        "movingWindow(ref.gauge.c, 5, 'multiply')",
        "exponentialMovingAverage(ref.gauge.a, 10)",
        "exponentialMovingAverage(ref.gauge.b, '5min')",
        "nPercentile(ref.gauge.*, 95)",
        "nPercentile(ref.gauge.a, 50.5)",
        "nPercentile(ref.empty.e, 50)",
        "stdev(ref.gauge.a, 10)",
        "stdev(ref.gauge.b, 5, 0.5)",
        "linearRegression(ref.gauge.a)",
        "linearRegression(ref.gauge.*)",
        "aggregateLine(ref.gauge.*)",
        "aggregateLine(ref.gauge.a, 'max')",
        "aggregateLine(ref.gauge.a, 'count', true)",
        "aggregateLine(ref.gauge.c, 'count')",
        "aggregateLine(ref.empty.e)",
        "identity('ident')",
        "timeShift(movingAverage(ref.gauge.a, '5min'), '2h')",
        "summarize(nonNegativeDerivative(ref.counter.x), '1h')",
    ] {
        add(target, w);
    }
    for target in [
        "holtWintersForecast(ref.hw.daily)",
        "holtWintersConfidenceBands(ref.hw.daily)",
        "holtWintersConfidenceBands(ref.hw.daily, 2, '3d', '12h')",
        "holtWintersAberration(ref.hw.daily)",
        "holtWintersAberration(ref.hw.daily, 1)",
        "holtWintersConfidenceArea(ref.hw.daily)",
        "holtWintersForecast(ref.hw.daily, '2d', '10min')",
    ] {
        add(target, day);
    }
    // Alias and legend.
    for target in [
        "alias(ref.gauge.a, 'A')",
        "aliasByNode(ref.gauge.*, 1, -1)",
        "aliasByNode(scale(ref.gauge.a, 2), 2)",
        "aliasByNode(ref.gauge.a, 7)",
        "aliasByMetric(ref.gauge.*)",
        "aliasByMetric(scale(ref.gauge.a, 2))",
        r"aliasSub(ref.gauge.*, '^ref\.(\w+)\.(\w)$', '\2-\1')",
        r#"aliasSub(ref.gauge.a, "(^.*$)", "\1 A")"#,
        r"aliasSub(ref.gauge.a, 'g(?P<x>a)', '\g<x>\g<0>[\g<1>]')",
        r"aliasSub(ref.gauge.a, 'x*', '-')",
        r"aliasSub(ref.gauge.a, '[.]', '\n\t\\')",
        r"aliasSub(ref.gauge.b, '(z)?b', '[\1]')",
        r"aliasSub(ref.gauge.b, '(b)', '\2')",
        r"aliasSub(ref.gauge.b, 'b', '\q')",
        r"aliasQuery(ref.gauge.a, 'ref\.gauge\.a', 'ref.gauge.c', 'c is %d')",
        r"aliasQuery(ref.gauge.a, 'ref\.gauge\.a', 'ref.gauge.c', '%.2f units')",
        "aliasByTags(ref.tagged.cpu;dc=east;host=h1, 'host', 'dc', 0)",
        "aliasByNode(ref.tagged.cpu;dc=west;host=h2, 'host', 2)",
        "legendValue(ref.gauge.a, 'avg', 'max')",
        "legendValue(ref.gauge.*, 'last', 'si')",
        "legendValue(ref.gauge.b, 'total', 'binary')",
        "legendValue(ref.gauge.a, 'count', 'averageSeries')",
        "cactiStyle(ref.gauge.*)",
        "cactiStyle(ref.gauge.b, 'si')",
        "cactiStyle(ref.gauge.b, 'binary', 'B')",
        "cactiStyle(ref.gauge.a, units='ms')",
        "cactiStyle(ref.empty.e)",
        "substr(ref.gauge.a, 1)",
        "substr(scale(ref.gauge.a, 2), 0, 2)",
        "aliasByNode(movingAverage(ref.gauge.*, 5), 2)",
    ] {
        add(target, w);
    }
    // Edges: odd windows, odd arguments, consolidation carried through, nesting.
    for target in [
        "movingAverage(ref.gauge.a, -3)",
        "movingAverage(ref.gauge.a, '-5min')",
        "movingSum(ref.gauge.b, 4, 1.0)",
        "exponentialMovingAverage(ref.gauge.a, 0)",
        "stdev(ref.gauge.a, 0)",
        "stdev(ref.gauge.a, -2)",
        "delay(ref.gauge.a, 100000)",
        "delay(ref.gauge.a, -100000)",
        "nPercentile(ref.gauge.a, 150)",
        "nPercentile(ref.gauge.a, -10)",
        "nPercentile(ref.gauge.a, 100)",
        "summarize(ref.gauge.a, '10min', 'multiply')",
        "summarize(ref.gauge.a, '10min', 'range')",
        "summarize(ref.gauge.b, '10min', 'avg_zero')",
        "summarize(ref.gauge.b, '10min', 'median')",
        "summarize(ref.slow.z, '12min', 'sum')",
        "hitcount(ref.gauge.c, '1d', true)",
        "hitcount(ref.slow.z, '2min')",
        "timeStack(ref.gauge.a)",
        "keepLastValue(ref.gauge.b, 0)",
        "round(ref.gauge.a, 0)",
        // Positional: graphite-web 1.1.8 does not prefetch path expressions that appear only in
        // keyword arguments, so `referenceSeries=ref.empty.e` would read as an empty list there.
        "transformNull(ref.gauge.b, 0, ref.empty.e)",
        "log(ref.gauge.a, 0)",
        "pow(ref.gauge.a, -1)",
        "perSecond(ref.counter.x, minValue=0)",
        "derivative(consolidateBy(ref.gauge.a, 'sum'))",
        "integral(consolidateBy(ref.gauge.a, 'max'))",
        "timeShift(ref.gauge.a, '0d')",
        "smartSummarize(ref.gauge.a, '1h', 'average', 'weeks')",
        "smartSummarize(ref.gauge.a, '1d', 'max', 'months')",
        "stacked(stacked(ref.gauge.a))",
        "linearRegression(ref.empty.e)",
        "powSeries(xFilesFactor(ref.gauge.a, 0.5), ref.gauge.b)",
        "consolidateBy(ref.gauge.a, 'avg_zero')",
        "consolidateBy(ref.gauge.a, 'first')",
        "consolidateBy(ref.gauge.a, 'min')",
        "fallbackSeries(ref.missing.*, ref.gauge.a)",
        "threshold(1.5, label='x')",
        r"aliasSub(ref.gauge.a, '(?i)REF', 'X')",
        r"aliasSub(ref.gauge.a, 'e{,2}', 'E')",
        r"aliasSub(ref.gauge.a, 'a{', 'x')",
        r"aliasSub(ref.gauge.a, '[^.]+$', '<\g<0>>')",
        r"aliasSub(ref.gauge.a, '\.', '\0')",
        "legendValue(ref.gauge.a, 'median', 'stddev', 'range', 'diff', 'multiply')",
        "cactiStyle(ref.gauge.a, 'si', 'b')",
        "substr(ref.gauge.a, -2)",
        "substr(ref.gauge.a, 1, -1)",
        "aliasByMetric(ref.tagged.cpu;dc=east;host=h1)",
        "aliasByNode(ref.gauge.a, -9, 'name')",
        "movingWindow(ref.gauge.a, 3, 'median', 0.9)",
        "movingMedian(timeShift(ref.gauge.b, '1h'), 4)",
        "holtWintersForecast(ref.gauge.a, '1d', '1h')",
        "scale(ref.tagged.cpu;dc=east;host=h1, 2)",
        "movingAverage(ref.tagged.cpu;dc=west;host=h2, '5min')",
        "summarize(ref.tagged.cpu;dc=west;host=h2, '1h', 'max')",
        r#"aliasSub(movingAverage(ref.gauge.*, '10min'), "(^.*$)", "\1 B")"#,
        r#"aliasSub(summarize(perSecond(ref.counter.x), '30min', 'avg'), "(^.*$)", "\1 C")"#,
        "alias(timeShift(summarize(ref.gauge.b, '1h', 'max'), '1d'), 'yesterday')",
        "aliasByNode(nonNegativeDerivative(ref.counter.*), 2)",
        "legendValue(keepLastValue(ref.gauge.b), 'last', 'max', 'si')",
        "aliasByNode(legendValue(ref.gauge.a, 'avg'), 1)",
        "aliasByNode(alias(ref.gauge.a, 'x y (z)'), 0)",
        "aliasByNode(alias(ref.gauge.a, '(z)'), 0)",
        "aliasByNode(alias(ref.gauge.a, 'f(1, g.h)'), 0)",
        "aliasByNode(alias(ref.gauge.a, 'sumSeries(a.b c)'), 0)",
        "aliasByNode(alias(ref.gauge.a, 'g.x(a.b))'), 1)",
    ] {
        add(target, w);
    }
    // Graph and Special.
    for target in [
        "color(ref.gauge.a, 'red')",
        "dashed(ref.gauge.a)",
        "dashed(ref.gauge.a, 3)",
        "lineWidth(ref.gauge.a, 2.5)",
        "stacked(ref.gauge.*)",
        "stacked(ref.gauge.*, 'tx')",
        "secondYAxis(ref.gauge.a)",
        "drawAsInfinite(ref.gauge.c)",
        "alpha(ref.gauge.a, 0.4)",
        "areaBetween(ref.gauge.{a,b})",
        "areaBetween(ref.gauge.*)",
        "threshold(1.5, 'lim', 'blue')",
        "threshold(7)",
        "constantLine(42)",
        "consolidateBy(ref.gauge.a, 'max')",
        "consolidateBy(ref.gauge.a, 'avg')",
        "cumulative(ref.gauge.a)",
        "xFilesFactor(ref.gauge.a, 0.5)",
        "setXFilesFactor(ref.gauge.a, 0.25)",
        "fallbackSeries(ref.missing.*, constantLine(1))",
        "fallbackSeries(ref.gauge.a, constantLine(1))",
    ] {
        add(target, w);
    }
    let mut cases: Vec<Case> = cases
        .into_iter()
        .map(|(target, (from, until))| Case {
            target,
            from,
            until,
            xff: 0.0,
        })
        .collect();
    // The request's xFilesFactor reaches fetched series and every function that reads it.
    for target in [
        "movingAverage(ref.gauge.b, 10)",
        "summarize(ref.gauge.b, '10min')",
        "constantLine(3)",
        "time('t')",
        "powSeries(ref.gauge.a, ref.gauge.b)",
        "holtWintersAberration(ref.gauge.b, 3, '2h', '1h')",
    ] {
        cases.push(Case {
            target: target.to_string(),
            from: w.0,
            until: w.1,
            xff: 0.8,
        });
    }
    cases
}

fn run_graphite(spec: &Json) -> Json {
    let mut child = Command::new("/usr/bin/python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/graphite_functions.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 must exist (graphite-web 1.1.8 is the reference)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the graphite-web reference driver failed (is graphite-web 1.1.8 with whisper installed?):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the driver prints JSON")
}

fn py_value(v: &Json) -> Option<f64> {
    match v {
        Json::Null => None,
        Json::String(s) if s == "nan" => Some(f64::NAN),
        Json::String(s) if s == "inf" => Some(f64::INFINITY),
        Json::String(s) if s == "-inf" => Some(f64::NEG_INFINITY),
        other => Some(
            other
                .as_f64()
                .unwrap_or_else(|| panic!("unexpected value {other}")),
        ),
    }
}

fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// graphite-web's `series.options` and `series.color` as our hints carry them.
fn our_options(s: &Series) -> (BTreeMap<String, Json>, Option<String>) {
    let h = &s.hints;
    let mut o = BTreeMap::new();
    if h.stacked.is_some() {
        o.insert("stacked".to_string(), json!(true));
    }
    if h.invisible {
        o.insert("invisible".to_string(), json!(true));
    }
    if h.second_y_axis {
        o.insert("secondYAxis".to_string(), json!(true));
    }
    if h.draw_as_infinite {
        o.insert("drawAsInfinite".to_string(), json!(true));
    }
    if let Some(w) = h.line_width {
        o.insert("lineWidth".to_string(), json!(w));
    }
    if let Some(d) = h.dashed {
        o.insert("dashed".to_string(), json!(d));
    }
    if let Some(a) = h.alpha {
        o.insert("alpha".to_string(), json!(a));
    }
    (o, h.color.clone())
}

fn compare_series(ours: &Series, theirs: &Json, known_values: &mut usize) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut check = |what: &str, a: String, b: String| {
        if a != b {
            diffs.push(format!("{what}: ours {a:?}, graphite-web {b:?}"));
        }
    };
    check(
        "name",
        ours.name.clone(),
        theirs["name"].as_str().unwrap_or("<null>").to_string(),
    );
    check(
        "pathExpression",
        ours.path_expression.clone(),
        theirs["pathExpression"]
            .as_str()
            .unwrap_or("<null>")
            .to_string(),
    );
    check("start", ours.start.to_string(), theirs["start"].to_string());
    check("end", ours.end.to_string(), theirs["end"].to_string());
    check("step", ours.step.to_string(), theirs["step"].to_string());
    check(
        "valuesPerPoint",
        ours.values_per_point.to_string(),
        theirs["valuesPerPoint"].to_string(),
    );
    let cf = theirs["consolidationFunc"].as_str().unwrap_or("");
    let cf = if cf == "avg" { "average" } else { cf };
    check(
        "consolidationFunc",
        ours.consolidation_func.name().to_string(),
        cf.to_string(),
    );
    let xff = theirs["xFilesFactor"].as_f64().unwrap_or(f64::NAN);
    if !close(ours.x_files_factor, xff) {
        check(
            "xFilesFactor",
            ours.x_files_factor.to_string(),
            xff.to_string(),
        );
    }
    let tags: BTreeMap<String, String> = theirs["tags"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect();
    check("tags", format!("{:?}", ours.tags), format!("{tags:?}"));
    let (opts, color) = our_options(ours);
    let their_opts: BTreeMap<String, Json> = theirs["options"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                if let Some(f) = v.as_f64() {
                    json!(f)
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    let opts: BTreeMap<String, Json> = opts
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                if let Some(f) = v.as_f64() {
                    json!(f)
                } else {
                    v
                },
            )
        })
        .collect();
    check("options", format!("{opts:?}"), format!("{their_opts:?}"));
    check(
        "color",
        format!("{color:?}"),
        format!("{:?}", theirs["color"].as_str().map(str::to_string)),
    );
    let ours_v = ours.consolidated();
    let theirs_v: Vec<Option<f64>> = theirs["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(py_value)
        .collect();
    if ours_v.len() != theirs_v.len() {
        diffs.push(format!(
            "length: ours {}, graphite-web {}",
            ours_v.len(),
            theirs_v.len()
        ));
    }
    let mut shown = 0;
    *known_values += theirs_v.iter().filter(|v| v.is_some()).count();
    for (i, (a, b)) in ours_v.iter().zip(&theirs_v).enumerate() {
        let same = match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => close(*a, *b),
            _ => false,
        };
        if !same && shown < 5 {
            diffs.push(format!("value[{i}]: ours {a:?}, graphite-web {b:?}"));
            shown += 1;
        }
    }
    diffs
}

#[test]
fn functions_match_graphite_web() {
    let now = unix_now();
    let base = now - now.rem_euclid(DAY) - DAY;
    let dir = tempfile::tempdir().unwrap();
    let whisper_dir = dir.path().join("whisper");
    let metrics = fixture(base);
    let cases = corpus(base);
    let spec = json!({
        "whisper_dir": whisper_dir,
        "metrics": metrics.iter().map(|m| json!({
            "name": m.name,
            "retentions": [[m.step, m.points]],
            "xff": 0.5,
            "aggregation": "average",
            "points": m.values.iter().map(|(t, v)| json!([t, v])).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "cases": cases
            .iter()
            .map(|c| json!({"target": c.target, "from": c.from, "until": c.until, "now": now, "xFilesFactor": c.xff}))
            .collect::<Vec<_>>(),
    });
    let reference = run_graphite(&spec);
    let results = reference["results"].as_array().expect("results");
    assert_eq!(results.len(), cases.len());

    let rules = StorageRules::new(
        parse_schemas("[all]\npattern = .*\nretentions = 60s:15d\n", "test").unwrap(),
        vec![],
    );
    let store = Store::open(&whisper_dir, rules, 1_000_000, Preallocation::Sparse, 0).unwrap();
    let limits = QueryLimits::default();
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut known_values = 0;
    for (case, theirs) in cases.iter().zip(results) {
        let req = Request {
            targets: vec![case.target.clone()],
            start: case.from,
            end: case.until,
            now,
            tz: chrono_tz::Tz::UTC,
            x_files_factor: case.xff,
            max_data_points: None,
            template: Vec::new(),
            timeout: Duration::from_secs(60),
        };
        let ours = evaluate(&store, &limits, &req);
        match (ours, theirs["ok"].as_bool().unwrap()) {
            (Err(e), false) => {
                compared += 1;
                eprintln!(
                    "both refuse {}: ours {e}; graphite-web {}",
                    case.target, theirs["error"]
                );
            }
            (Err(e), true) => failures.push(format!(
                "{}: we refuse ({e}) but graphite-web answers",
                case.target
            )),
            (Ok(_), false) => failures.push(format!(
                "{}: graphite-web refuses ({}) but we answer",
                case.target, theirs["error"]
            )),
            (Ok(ours), true) => {
                let theirs = theirs["series"].as_array().unwrap();
                if ours.len() != theirs.len() {
                    failures.push(format!(
                        "{}: {} series, graphite-web {} ({:?} vs {:?})",
                        case.target,
                        ours.len(),
                        theirs.len(),
                        ours.iter().map(|s| &s.name).collect::<Vec<_>>(),
                        theirs.iter().map(|s| s["name"].clone()).collect::<Vec<_>>()
                    ));
                    continue;
                }
                compared += 1;
                for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
                    for d in compare_series(o, t, &mut known_values) {
                        failures.push(format!("{} [series {i}] {d}", case.target));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences from graphite-web:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(compared, cases.len());
    eprintln!("{compared} targets, {known_values} non-null values agree with graphite-web");
    assert!(
        known_values > 50_000,
        "the corpus compared too few values ({known_values})"
    );
}
