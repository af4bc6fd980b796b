//! Special: consolidation controls (`consolidateBy`, `cumulative`, `setXFilesFactor`),
//! `changed`, `fallbackSeries`, and series made from nothing but the request's range
//! (`time`, `sin`, `randomWalk`) — graphite-web's "Special" group and the generators it files
//! under "Transform".
//!
//! Not here: `events` (events.rs: it reads the event store), `seriesByTag` (the tags family), `constantLine` (graph.rs), `cactiStyle` and `substr`
//! (alias.rs: they rename). `randomWalk` draws from a random generator as graphite-web does,
//! so only its shape is reproducible. Nothing here fetches by itself or writes.

use super::error::bad;
use std::time::{SystemTime, UNIX_EPOCH};

use super::values::{iter_values, set_values};
use crate::python::repr_f64;
use crate::query::eval::{EvalContext, EvalError};
use crate::query::series::{ConsolidationFunc, Series};
use crate::query::signature::{Args, FunctionDef, Param, ParamDefault, ParamType as T};

fn changed(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = format!("changed({})", s.name);
        s.path_expression = s.name.clone();
        let mut previous: Option<f64> = None;
        let vals = iter_values(s)
            .into_iter()
            .map(|v| {
                Some(match (previous, v) {
                    (None, _) => {
                        previous = v;
                        0.0
                    }
                    (Some(p), Some(x)) if p != x => {
                        previous = v;
                        1.0
                    }
                    _ => 0.0,
                })
            })
            .collect();
        set_values(s, vals);
    }
    Ok(list)
}

const CHANGED: FunctionDef = FunctionDef {
    name: "changed",
    group: "Special",
    description: "\
        Takes one metric or a wildcard seriesList.\n\
        Output 1 when the value changed, 0 when null or the same\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=changed(Server01.connections.handled)",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: changed,
};

fn consolidate_by_name(args: &Args<'_>, func: &str) -> Result<Vec<Series>, EvalError> {
    let cf = ConsolidationFunc::parse(func)
        .ok_or_else(|| bad(format!("Invalid consolidation function: '{func}'")))?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.consolidation_func = cf;
        s.tags.insert("consolidateBy".into(), func.to_string());
        // graphite-web prints the function as given (`avg` stays `avg`).
        s.name = format!("consolidateBy({},\"{}\")", s.name, func);
        s.path_expression = s.name.clone();
    }
    Ok(list)
}

fn consolidate_by(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let func = args.string("consolidationFunc")?;
    consolidate_by_name(args, &func)
}

const CONSOLIDATE_BY: FunctionDef = FunctionDef {
    name: "consolidateBy",
    group: "Special",
    description: "\
        Takes one metric or a wildcard seriesList and a consolidation function name.\n\
        \n\
        Valid function names are 'sum', 'average'/'avg', 'min', 'max', 'first' & 'last'.\n\
        \n\
        When a graph is drawn where width of the graph size in pixels is smaller than\n\
        the number of datapoints to be graphed, Graphite consolidates the values to\n\
        to prevent line overlap. The consolidateBy() function changes the consolidation\n\
        function from the default of 'average' to one of 'sum', 'max', 'min', 'first', or 'last'.\n\
        This is especially useful in sales graphs, where fractional values make no sense and a \
        'sum'\n\
        of consolidated values is appropriate.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=consolidateBy(Sales.widgets.largeBlue, 'sum')\
        \n  &target=consolidateBy(Servers.web01.sda1.free_space, 'max')",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("consolidationFunc", T::String).options(&[
            "sum", "average", "avg", "avg_zero", "min", "max", "first", "last",
        ]),
    ],
    aggregator: false,
    imp: consolidate_by,
};

fn cumulative(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    consolidate_by_name(args, "sum")
}

const CUMULATIVE: FunctionDef = FunctionDef {
    name: "cumulative",
    group: "Special",
    description: "\
        Takes one metric or a wildcard seriesList.\n\
        \n\
        When a graph is drawn where width of the graph size in pixels is smaller than\n\
        the number of datapoints to be graphed, Graphite consolidates the values to\n\
        to prevent line overlap. The cumulative() function changes the consolidation\n\
        function from the default of 'average' to 'sum'. This is especially useful in\n\
        sales graphs, where fractional values make no sense and a 'sum' of consolidated\n\
        values is appropriate.\n\
        \n\
        Alias for :func:`consolidateBy(series, 'sum') <graphite.render.functions.consolidateBy>`\n\
        \n\
        .. code-block:: none\n\
        \n  &target=cumulative(Sales.widgets.largeBlue)",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: cumulative,
};

fn set_x_files_factor(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let xff = args.float("xFilesFactor")?;
    let mut list = args.series_list("seriesList")?;
    // graphite-web stores it in the request context: later fetches and built series use it.
    *ctx.state.x_files_factor.lock() = Some(xff);
    for s in &mut list {
        s.x_files_factor = xff;
        s.tags.insert("xFilesFactor".into(), repr_f64(xff));
    }
    Ok(list)
}

const SET_X_FILES_FACTOR: FunctionDef = FunctionDef {
    name: "setXFilesFactor",
    group: "Special",
    description: "\
        Short form: xFilesFactor()\n\
        \n\
        Takes one metric or a wildcard seriesList and an xFilesFactor value between 0 and 1\n\
        \n\
        When a series needs to be consolidated, this sets the fraction of values in an interval \
        that must\n\
        not be null for the consolidation to be considered valid.  If there are not enough values \
        then\n\
        None will be returned for that interval.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=xFilesFactor(Sales.widgets.largeBlue, 0.5)\
        \n  &target=Servers.web01.sda1.free_space|consolidateBy('max')|xFilesFactor(0.5)\n\
        \n\
        The `xFilesFactor` set via this function is used as the default for all functions that \
        accept an\n\
        `xFilesFactor` parameter, all functions that aggregate data across multiple series and/or\n\
        intervals, and `maxDataPoints <render_api.html#maxdatapoints>`_ consolidation.\n\
        \n\
        A default for the entire render request can also be set using the\n\
        `xFilesFactor <render_api.html#xfilesfactor>`_ query parameter.\n\
        \n\
        .. note::\n\
        \n  `xFilesFactor` follows the same semantics as in Whisper storage schemas.  Setting it \
        to 0 (the\
        \n  default) means that only a single value in a given interval needs to be non-null, \
        setting it to\
        \n  1 means that all values in the interval must be non-null.  A setting of 0.5 means that \
        at least\
        \n  half the values in the interval must be non-null.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("xFilesFactor", T::Float),
    ],
    aggregator: false,
    imp: set_x_files_factor,
};
const X_FILES_FACTOR: FunctionDef = SET_X_FILES_FACTOR.alias("xFilesFactor");

fn fallback_series(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let list = args.series_list("seriesList")?;
    if !list.is_empty() {
        return Ok(list);
    }
    args.series_list("fallback")
}

const FALLBACK_SERIES: FunctionDef = FunctionDef {
    name: "fallbackSeries",
    group: "Special",
    description: "\
        Takes a wildcard seriesList, and a second fallback metric.\n\
        If the wildcard does not match any series, draws the fallback metric.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=fallbackSeries(server*.requests_per_second, constantLine(0))\n\
        \n\
        Draws a 0 line when server metric does not exist.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("fallback", T::SeriesList),
    ],
    aggregator: false,
    imp: fallback_series,
};

/// The timestamps graphite-web's generators walk: from the request's start while before its
/// end, `step` seconds apart. Refuses a step that would loop forever in graphite-web and a
/// range that would exceed the request's point budget.
fn generator_times(
    ctx: &EvalContext<'_>,
    step: i64,
) -> Result<std::iter::StepBy<std::ops::Range<i64>>, EvalError> {
    if step <= 0 {
        return Err(bad(format!(
            "step must be a positive number of seconds, not {step}"
        )));
    }
    let n = (ctx.end - ctx.start).max(0) / step;
    if n > ctx.limits.max_points as i64 {
        return Err(EvalError::TooLarge(format!(
            "{n} points exceed the request's point limit"
        )));
    }
    Ok((ctx.start..ctx.end.max(ctx.start)).step_by(step as usize))
}

fn time_function(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let name = args.string("name")?;
    let step = args.int("step")?;
    let values = generator_times(ctx, step)?
        .map(|t| Some(t as f64))
        .collect();
    Ok(vec![Series::new(
        name,
        ctx.start,
        ctx.end,
        step,
        values,
        ctx.default_x_files_factor(),
    )])
}

const TIME_FUNCTION: FunctionDef = FunctionDef {
    name: "timeFunction",
    group: "Transform",
    description: "\
        Short Alias: time()\n\
        \n\
        Just returns the timestamp for each X value. T\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=time(\"The.time.series\")\n\
        \n\
        This would create a series named \"The.time.series\" that contains in Y the same\n\
        value (in seconds) as X.\n\
        Accepts optional second argument as 'step' parameter (default step is 60 sec)",
    params: &[
        Param::req("name", T::String),
        Param::def("step", T::Integer, ParamDefault::Int(60)),
    ],
    aggregator: false,
    imp: time_function,
};
const TIME: FunctionDef = TIME_FUNCTION.alias("time");

fn sin_function(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let name = args.string("name")?;
    let amplitude = args.int("amplitude")? as f64;
    let step = args.int("step")?;
    let values = generator_times(ctx, step)?
        .map(|t| Some((t as f64).sin() * amplitude))
        .collect();
    Ok(vec![Series::new(
        name,
        ctx.start,
        ctx.end,
        step,
        values,
        ctx.default_x_files_factor(),
    )])
}

const SIN_FUNCTION: FunctionDef = FunctionDef {
    name: "sinFunction",
    group: "Transform",
    description: "\
        Short Alias: sin()\n\
        \n\
        Just returns the sine of the current time. The optional amplitude parameter\n\
        changes the amplitude of the wave.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=sin(\"The.time.series\", 2)\n\
        \n\
        This would create a series named \"The.time.series\" that contains sin(x)*2.\n\
        Accepts optional second argument as 'amplitude' parameter (default amplitude is 1)\n\
        Accepts optional third argument as 'step' parameter (default step is 60 sec)",
    params: &[
        Param::req("name", T::String),
        Param::def("amplitude", T::Integer, ParamDefault::Int(1)),
        Param::def("step", T::Integer, ParamDefault::Int(60)),
    ],
    aggregator: false,
    imp: sin_function,
};
const SIN: FunctionDef = SIN_FUNCTION.alias("sin");

/// A small xorshift generator seeded from the clock: `randomWalk` wants noise, not a
/// reproducible or secure sequence.
struct Noise(u64);

impl Noise {
    fn new() -> Noise {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Noise(nanos ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    /// Uniform in [0, 1), as Python's `random.random()`.
    fn next(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn random_walk(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let name = args.string("name")?;
    let step = args.int("step")?;
    let mut noise = Noise::new();
    let mut current = 0.0;
    let values = generator_times(ctx, step)?
        .map(|_| {
            let v = current;
            current += noise.next() - 0.5;
            Some(v)
        })
        .collect();
    Ok(vec![Series::new(
        name,
        ctx.start,
        ctx.end,
        step,
        values,
        ctx.default_x_files_factor(),
    )])
}

const RANDOM_WALK_FUNCTION: FunctionDef = FunctionDef {
    name: "randomWalkFunction",
    group: "Special",
    description: "\
        Short Alias: randomWalk()\n\
        \n\
        Returns a random walk starting at 0. This is great for testing when there is\n\
        no real data in whisper.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=randomWalk(\"The.time.series\")\n\
        \n\
        This would create a series named \"The.time.series\" that contains points where\n\
        x(t) == x(t-1)+random()-0.5, and x(0) == 0.\n\
        Accepts optional second argument as 'step' parameter (default step is 60 sec)",
    params: &[
        Param::req("name", T::String),
        Param::def("step", T::Integer, ParamDefault::Int(60)),
    ],
    aggregator: false,
    imp: random_walk,
};
const RANDOM_WALK: FunctionDef = RANDOM_WALK_FUNCTION.alias("randomWalk");

/// The Special family (and the generators graphite-web files under "Transform").
pub const FUNCTIONS: &[FunctionDef] = &[
    CHANGED,
    CUMULATIVE,
    CONSOLIDATE_BY,
    SET_X_FILES_FACTOR,
    X_FILES_FACTOR,
    FALLBACK_SERIES,
    RANDOM_WALK,
    RANDOM_WALK_FUNCTION,
    TIME,
    TIME_FUNCTION,
    SIN,
    SIN_FUNCTION,
];

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::eval;
    use crate::query::eval::{EvalError, QueryLimits};
    use crate::query::series::ConsolidationFunc;
    use crate::query::{evaluate, MemorySource, Request};

    #[test]
    fn random_walk_steps_default_to_a_minute() {
        // graphite-web's Python `step=60`, for both names.
        for target in ["randomWalk('walk')", "randomWalkFunction('walk')"] {
            let s = eval(&[], target, 1000, 1600).unwrap();
            assert_eq!((s[0].step, s[0].len()), (60, 10), "{target}");
        }
    }

    #[test]
    fn random_walk_has_graphite_shape() {
        // Values are random (as graphite-web's); the shape is not.
        let s = eval(&[], "randomWalk('walk', 30)", 1000, 1300).unwrap();
        assert_eq!(
            (
                s[0].name.as_str(),
                s[0].start,
                s[0].end,
                s[0].step,
                s[0].len()
            ),
            ("walk", 1000, 1300, 30, 10)
        );
        assert_eq!(s[0].values[0], Some(0.0));
        assert!(s[0]
            .values
            .windows(2)
            .all(|w| (w[1].unwrap() - w[0].unwrap()).abs() <= 0.5));
        assert!(matches!(
            eval(&[], "randomWalk('walk', 0)", 1000, 1300),
            Err(EvalError::BadRequest(_))
        ));
        assert!(matches!(
            eval(&[], "sin('s', 1, -5)", 1000, 1300),
            Err(EvalError::BadRequest(_))
        ));
        assert!(matches!(
            eval(&[], "time('t', 1)", 0, i64::MAX / 2),
            Err(EvalError::TooLarge(_))
        ));
    }

    #[test]
    fn consolidation_controls() {
        let t0 = 1_700_000_000 - 100;
        let pts = [("a", t0 + 10, 1.0)];
        let s = eval(&pts, "cumulative(a)", t0, t0 + 60).unwrap();
        assert_eq!(
            (s[0].name.as_str(), s[0].consolidation_func),
            ("consolidateBy(a,\"sum\")", ConsolidationFunc::Sum)
        );
        let s = eval(&pts, "consolidateBy(a, 'avg')", t0, t0 + 60).unwrap();
        assert_eq!(s[0].name, "consolidateBy(a,\"avg\")");
        assert!(matches!(
            eval(&pts, "consolidateBy(a, 'mode')", t0, t0 + 60),
            Err(EvalError::BadRequest(_))
        ));
        let s = eval(
            &pts,
            "fallbackSeries(nothing.*, constantLine(2))",
            t0,
            t0 + 60,
        )
        .unwrap();
        assert_eq!(s[0].name, "2.0");
    }

    /// `setXFilesFactor` and `stacked` change the request, as graphite-web's requestContext:
    /// later targets see the new xFilesFactor and stack onto the earlier totals.
    #[test]
    fn request_wide_effects_reach_later_targets() {
        let mut store = MemorySource::new();
        let now = 1_700_000_000;
        for (n, v) in [("a", 1.0), ("b", 2.0)] {
            store.insert(n, now - 50, v);
        }
        let req = |targets: &[&str]| Request {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            start: now - 60,
            end: now,
            now,
            tz: chrono_tz::Tz::UTC,
            x_files_factor: 0.0,
            max_data_points: None,
            template: Vec::new(),
            timeout: Duration::from_secs(10),
        };
        let limits = QueryLimits::default();
        let s = evaluate(&store, &limits, &req(&["xFilesFactor(a, 0.5)", "b"])).unwrap();
        assert_eq!((s[0].x_files_factor, s[1].x_files_factor), (0.5, 0.5));
        let s = evaluate(&store, &limits, &req(&["stacked(a)", "stacked(b)"])).unwrap();
        assert_eq!(
            s[1].values.iter().flatten().copied().collect::<Vec<_>>(),
            vec![3.0]
        );
    }
}

#[cfg(test)]
mod no_panic {
    //! Every function of the Transform, Calculate, Alias, Graph and Special families, called
    //! with odd arguments (empty lists, NaN and infinite data, zero, negative and huge numbers,
    //! odd strings): each answers or refuses, none panics or runs away.
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::time::{Duration, Instant};

    use crate::query::eval::QueryLimits;
    use crate::query::signature::ParamType as T;
    use crate::query::{evaluate, MemorySource, Request};

    #[test]
    fn odd_arguments_never_panic() {
        let mut store = MemorySource::new();
        let now = 1_700_000_000;
        for i in 0..60 {
            let t = now - 600 + 10 * i;
            store.insert("a", t, (i as f64 * 0.3).sin() * 10.0);
            store.insert("n.nan", t, if i % 3 == 0 { f64::NAN } else { i as f64 });
            store.insert(
                "n.inf",
                t,
                if i % 4 == 0 {
                    f64::INFINITY
                } else {
                    -(i as f64)
                },
            );
            store.insert("n.zero", t, 0.0);
        }
        let series = ["a", "n.*", "nothing.*", "scale(n.*, -1)"];
        let numbers = [
            "0",
            "-1",
            "1",
            "2.5",
            "1e300",
            "-9223372036854775807",
            "9223372036854775807",
        ];
        let strings = [
            "''",
            "'5min'",
            "'-1d'",
            "'x'",
            "'1000000000d'",
            "'('",
            "'\\\\'",
            "'sum'",
            "'si'",
            "'1d'",
            "'-0s'",
            "'9000000000000000000s'",
            "'-100000000d'",
        ];
        let limits = QueryLimits {
            max_points: 1_000_000,
            max_series_per_target: 1_000,
            ..QueryLimits::default()
        };
        let mut seed = 7u64;
        let mut pick = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        let mut checked = 0;
        for family in [
            super::FUNCTIONS,
            super::super::transform::FUNCTIONS,
            super::super::calculate::FUNCTIONS,
            super::super::alias::FUNCTIONS,
            super::super::graph::FUNCTIONS,
        ] {
            for def in family {
                for _ in 0..60 {
                    let n = def.params.len().saturating_sub(pick(2)).max(1);
                    let args: Vec<String> = def.params[..n]
                        .iter()
                        .map(|p| match p.kind {
                            T::Series | T::SeriesList | T::SeriesLists => {
                                series[pick(series.len())].to_string()
                            }
                            _ => match pick(4) {
                                0 | 1 => numbers[pick(numbers.len())].to_string(),
                                2 => strings[pick(strings.len())].to_string(),
                                _ => ["true", "None"][pick(2)].to_string(),
                            },
                        })
                        .collect();
                    let target = format!("{}({})", def.name, args.join(", "));
                    let req = Request {
                        targets: vec![target.clone()],
                        start: now - 300,
                        end: now,
                        now,
                        tz: chrono_tz::Tz::UTC,
                        x_files_factor: 0.0,
                        max_data_points: None,
                        template: Vec::new(),
                        timeout: Duration::from_secs(2),
                    };
                    let began = Instant::now();
                    let r = catch_unwind(AssertUnwindSafe(|| evaluate(&store, &limits, &req)));
                    assert!(r.is_ok(), "{target} panicked");
                    assert!(
                        began.elapsed() < Duration::from_secs(5),
                        "{target} ran away"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 3000);
    }
}
