//! Transform: functions that change each series' values (graphite-web's "Transform" group).

use crate::query::eval::{EvalContext, EvalError};
use crate::query::pyfmt::format_g;
use crate::query::registry::{Args, Default, FunctionDef, Param, ParamType as T};
use crate::query::series::Series;

fn scale(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let factor = args.float("factor")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.tags.insert("scale".into(), crate::query::pyfmt::str_number(factor, factor.fract() == 0.0 && !args.call().args.iter().any(|a| matches!(a, crate::query::ast::Expr::Float(_)))));
        s.name = format!("scale({},{})", s.name, format_g(factor));
        s.path_expression = s.name.clone();
        let vals: Vec<Option<f64>> = s.consolidated().iter().map(|v| v.map(|x| x * factor)).collect();
        s.values = vals;
        s.values_per_point = 1;
    }
    Ok(list)
}

fn keep_last_value(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let limit = args.opt_float("limit")?.unwrap_or(f64::INFINITY);
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = format!("keepLastValue({})", s.name);
        s.path_expression = s.name.clone();
        let mut vals: Vec<Option<f64>> = s.consolidated().into_owned();
        let mut nones = 0usize;
        let mut last: Option<f64> = None;
        for i in 0..vals.len() {
            match vals[i] {
                None => nones += 1,
                Some(v) => {
                    if nones > 0 && (nones as f64) <= limit {
                        if let Some(l) = last {
                            for slot in &mut vals[i - nones..i] {
                                *slot = Some(l);
                            }
                        }
                    }
                    nones = 0;
                    last = Some(v);
                }
            }
        }
        if nones > 0 && (nones as f64) <= limit {
            if let Some(l) = last {
                let n = vals.len();
                for slot in &mut vals[n - nones..] {
                    *slot = Some(l);
                }
            }
        }
        s.values = vals;
        s.values_per_point = 1;
    }
    Ok(list)
}

/// The Transform family.
pub const FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "scale",
        group: "Transform",
        description: "Takes one metric or a wildcard seriesList followed by a constant, and multiplies the datapoint\nby the constant provided at each point.\n\nExample:\n\n.. code-block:: none\n\n  &target=scale(Server.instance01.threads.busy,10)\n  &target=scale(Server.instance*.threads.busy,10)",
        params: &[Param::req("seriesList", T::SeriesList), Param::req("factor", T::Float)],
        aggregator: false,
        imp: scale,
    },
    FunctionDef {
        name: "keepLastValue",
        group: "Transform",
        description: "Takes one metric or a wildcard seriesList, and optionally a limit to the number of 'None' values to skip over.\nContinues the line with the last received value when gaps ('None' values) appear in your data, rather than breaking your line.\n\nExample:\n\n.. code-block:: none\n\n  &target=keepLastValue(Server01.connections.handled)\n  &target=keepLastValue(Server01.connections.handled, 10)",
        params: &[Param::req("seriesList", T::SeriesList), Param::def("limit", T::IntOrInf, Default::Float(f64::INFINITY))],
        aggregator: false,
        imp: keep_last_value,
    },
];

#[cfg(test)]
mod tests {
    use super::super::testing::eval;

    #[test]
    fn scale_and_keep_last_value() {
        let t0 = 1_700_000_000 - 100;
        let pts = [("a", t0 + 10, 1.0), ("a", t0 + 40, 4.0)];
        let s = eval(&pts, "scale(a, 0.5)", t0, t0 + 60).unwrap();
        assert_eq!(s[0].name, "scale(a,0.5)");
        assert_eq!(s[0].values.iter().flatten().copied().collect::<Vec<_>>(), vec![0.5, 2.0]);
        let s = eval(&pts, "keepLastValue(a)", t0, t0 + 60).unwrap();
        assert_eq!(s[0].name, "keepLastValue(a)");
        assert_eq!(s[0].values, vec![Some(1.0), Some(1.0), Some(1.0), Some(4.0), Some(4.0), Some(4.0)]);
        let s = eval(&pts, "keepLastValue(a, 1)", t0, t0 + 60).unwrap();
        assert_eq!(s[0].values, vec![Some(1.0), None, None, Some(4.0), None, None], "gaps longer than the limit stay");
    }
}
