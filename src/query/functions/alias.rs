//! Alias: functions that rename series (graphite-web's "Alias" group).

use crate::query::eval::{EvalContext, EvalError};
use crate::query::registry::{Args, FunctionDef, Param, ParamType as T};
use crate::query::series::Series;

fn alias(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let name = args.string("newName")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = name.clone();
    }
    Ok(list)
}

/// The Alias family.
pub const FUNCTIONS: &[FunctionDef] = &[FunctionDef {
    name: "alias",
    group: "Alias",
    description: "Takes one metric or a wildcard seriesList and a string in quotes.\nPrints the string instead of the metric name in the legend.\n\n.. code-block:: none\n\n  &target=alias(Sales.widgets.largeBlue,\"Large Blue Widgets\")",
    params: &[Param::req("seriesList", T::SeriesList), Param::req("newName", T::String)],
    aggregator: false,
    imp: alias,
}];

#[cfg(test)]
mod tests {
    use super::super::testing::eval;

    #[test]
    fn renames() {
        let s = eval(&[("a.b", 1_699_999_990, 1.0)], "alias(a.*, 'load')", 1_699_999_900, 1_700_000_000).unwrap();
        assert_eq!(s[0].name, "load");
    }
}
