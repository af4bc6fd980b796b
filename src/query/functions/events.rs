//! `events(*tags)`: graphite-web's series of posted events (deploy markers), one value per
//! second counting the events of that second, for `drawAsInfinite(events("deploy"))`.
//!
//! Reads events through the request's source ([`crate::query::MetricSource::events`]); never
//! writes them, never fetches metrics. Tag matching is graphite-web's `find_events` without `set` (events having
//! all the tags, names no event has dropped; `"*"` alone for every event).
//!
//! Where carbonhound knowingly differs from graphite-web 1.1.8: an event exactly at the end of
//! the range (the series has no slot for it) is left out; graphite-web fails the request with
//! an `IndexError`, which Grafana's default `until=now` meets for an event posted that second.

use std::ops::ControlFlow;

use super::error::bad;
use super::naming::py_str_value;
use crate::query::eval::{EvalContext, EvalError};
use crate::query::series::{ConsolidationFunc, Series};
use crate::query::signature::{Args, FunctionDef, Param, ParamType as T};

/// How many events are counted between two checks of the request's deadline.
const DEADLINE_EVERY: usize = 4096;

/// graphite-web's `events`: step 1 from the range's start to its end (whole seconds), named
/// `events("tag1", "tag2")`, each value the number of matching events in that second (`None`
/// where there are none), consolidated by `sum`, with the request's xFilesFactor. Its
/// `end - start` values count against `query.max_points_per_response`.
fn events(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let tags: Vec<String> = args.values("tags")?.iter().map(py_str_value).collect();
    let name = format!("events(\"{}\")", tags.join("\", \""));
    let (start, end) = (ctx.start, ctx.end.max(ctx.start));
    let points = usize::try_from(end - start)
        .map_err(|_| EvalError::TooLarge("time range too long for events()".into()))?;
    ctx.charge_points(points)?;
    let tags = (tags != ["*"]).then_some(tags);
    let mut values: Vec<Option<f64>> = vec![None; points];
    let mut seen = 0usize;
    let mut stopped = None;
    // Events from `start` up to (not including) `end`: every event that has a slot.
    ctx.source
        .events(
            start.saturating_mul(1_000_000),
            end.saturating_mul(1_000_000).saturating_sub(1),
            tags,
            &mut |event| {
                seen += 1;
                if seen % DEADLINE_EVERY == 0 {
                    if let Err(e) = ctx.check_deadline() {
                        stopped = Some(e);
                        return ControlFlow::Break(());
                    }
                }
                let slot = (event.when_seconds() - start) as usize;
                if let Some(v) = values.get_mut(slot) {
                    *v = Some(v.unwrap_or(0.0) + 1.0);
                }
                ControlFlow::Continue(())
            },
        )
        .map_err(|e| bad(e.to_string()))?;
    if let Some(e) = stopped {
        return Err(e);
    }
    let mut series = Series::new(name, start, end, 1, values, ctx.default_x_files_factor());
    series.consolidation_func = ConsolidationFunc::Sum;
    Ok(vec![series])
}

const EVENTS: FunctionDef = FunctionDef {
    name: "events",
    group: "Special",
    description: "\
        Returns the number of events at this point in time. Usable with\n\
        drawAsInfinite.\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=events(\"tag-one\", \"tag-two\")\
        \n  &target=events(\"*\")\n\
        \n\
        Returns all events tagged as \"tag-one\" and \"tag-two\" and the second one\n\
        returns all events.",
    params: &[Param::req("tags", T::String).many()],
    aggregator: false,
    imp: events,
};

/// The `events` function (graphite-web files it under "Special").
pub const FUNCTIONS: &[FunctionDef] = &[EVENTS];

#[cfg(test)]
mod tests {
    use crate::events::NewEvent;
    use crate::query::eval::EvalError;
    use crate::query::functions::testing::{eval_in, source};
    use crate::query::series::ConsolidationFunc;

    #[test]
    fn counts_events_per_second_within_the_point_budget() {
        let t0 = 1_700_000_000;
        let mut metrics = source(&[]);
        assert!(
            eval_in(&metrics, "events(\"deploy\")", t0, t0 + 10).is_err(),
            "no event store"
        );
        for (when_us, tags) in [
            (t0 * 1_000_000 + 2_500_000, "deploy web"),
            (t0 * 1_000_000 + 2_000_000, "deploy"),
            (t0 * 1_000_000 + 4_000_000, "db"),
            (t0 * 1_000_000 + 10_000_000, "deploy"), // at the end: no slot
        ] {
            metrics.add_event(NewEvent {
                when_us: Some(when_us),
                what: "x".into(),
                data: String::new(),
                tags: tags.into(),
            });
        }
        let deploy = eval_in(&metrics, "events(\"deploy\")", t0, t0 + 10);
        let all = eval_in(&metrics, "events('*')", t0, t0 + 10);
        let both = eval_in(&metrics, "events(\"deploy\", \"web\")", t0, t0 + 10);
        let huge = eval_in(&metrics, "events(\"deploy\")", 0, 60_000_000);

        let s = &deploy.unwrap()[0];
        assert_eq!(s.name, "events(\"deploy\")");
        assert_eq!(s.path_expression, s.name);
        assert_eq!((s.start, s.end, s.step), (t0, t0 + 10, 1));
        assert_eq!(s.consolidation_func, ConsolidationFunc::Sum);
        let mut want = vec![None; 10];
        want[2] = Some(2.0);
        assert_eq!(s.values, want);
        want[4] = Some(1.0);
        assert_eq!(all.unwrap()[0].values, want);
        let s = &both.unwrap()[0];
        assert_eq!(s.name, "events(\"deploy\", \"web\")");
        assert_eq!(s.values.iter().flatten().sum::<f64>(), 1.0);
        assert!(matches!(huge, Err(EvalError::TooLarge(_))), "{huge:?}");
    }
}
