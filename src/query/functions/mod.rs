//! Every function of the target language, one file per family as graphite-web groups them.
//! [`all`] is the registry: evaluation, `/functions` and the docs all read it, so a function
//! exists exactly when it is listed here.

pub mod alias;
pub mod combine;
pub mod common;
pub mod graph;
pub mod transform;

use std::collections::HashMap;
use std::sync::LazyLock;

use super::registry::FunctionDef;

static REGISTRY: LazyLock<HashMap<&'static str, &'static FunctionDef>> = LazyLock::new(|| {
    let mut m = HashMap::new();
    for family in [combine::FUNCTIONS, transform::FUNCTIONS, alias::FUNCTIONS, graph::FUNCTIONS] {
        for f in family {
            m.insert(f.name, f);
        }
    }
    m
});

/// The function called `name`, if implemented.
pub fn lookup(name: &str) -> Option<&'static FunctionDef> {
    REGISTRY.get(name).copied()
}

/// Every implemented function, sorted by name.
pub fn all() -> Vec<&'static FunctionDef> {
    let mut v: Vec<&'static FunctionDef> = REGISTRY.values().copied().collect();
    v.sort_by_key(|f| f.name);
    v
}

#[cfg(test)]
pub(crate) mod testing {
    //! Evaluating targets against series built in memory.
    use std::time::{Duration, Instant};

    use chrono_tz::Tz;

    use crate::config::schemas::{parse_schemas, StorageRules};
    use crate::query::eval::{EvalContext, EvalError, QueryLimits, RequestState};
    use crate::query::parse::parse_target;
    use crate::query::series::Series;
    use crate::store::Store;
    use crate::whisper::Preallocation;

    /// Evaluates `target` over `[start, end)` against a store holding `points` (10 s steps).
    pub fn eval(points: &[(&str, i64, f64)], target: &str, start: i64, end: i64) -> Result<Vec<Series>, EvalError> {
        let dir = tempfile::tempdir().unwrap();
        let rules = StorageRules::new(parse_schemas("[all]\npattern = .*\nretentions = 10s:1d\n", "t").unwrap(), vec![]);
        let store = Store::open(dir.path(), rules, 1_000_000, Preallocation::Sparse, 0).unwrap();
        for (n, t, v) in points {
            store.insert(n, *t, *v);
        }
        let limits = QueryLimits::default();
        let state = RequestState::default();
        let ctx = EvalContext {
            store: &store,
            start,
            end,
            now: end,
            tz: Tz::UTC,
            x_files_factor: 0.0,
            max_data_points: None,
            limits: &limits,
            deadline: Instant::now() + Duration::from_secs(30),
            request_template: &[],
            replacements: None,
            state: &state,
        };
        ctx.eval_target(&parse_target(target, 64).map_err(|e| EvalError::BadRequest(e.to_string()))?)
    }
}
