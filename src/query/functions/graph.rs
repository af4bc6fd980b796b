//! Graph and Special: lines drawn without stored data (`constantLine`, `threshold`) and hints
//! for the renderer (graphite-web's "Graph" and "Special" groups).

use crate::query::eval::{EvalContext, EvalError};
use crate::query::pyfmt::repr_f64;
use crate::query::registry::{Args, FunctionDef, Param, ParamType as T};
use crate::query::series::Series;

/// graphite-web's `constantLine`: three points spanning the request, named by the value.
pub fn constant_line(ctx: &EvalContext<'_>, value: f64) -> Series {
    let step = ((ctx.end - ctx.start) as f64 / 2.0) as i64;
    let mut s = Series::new(repr_f64(value), ctx.start, ctx.end, step.max(1), vec![Some(value); 3], ctx.x_files_factor);
    s.path_expression = format!("constantLine({})", repr_f64(value));
    s
}

fn constant_line_fn(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    Ok(vec![constant_line(ctx, args.float("value")?)])
}

fn threshold(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut s = constant_line(ctx, args.float("value")?);
    if let Some(label) = args.opt_str("label")?.filter(|l| !l.is_empty()) {
        s.name = label;
    }
    if let Some(color) = args.opt_str("color")?.filter(|c| !c.is_empty()) {
        s.hints.color = Some(color);
    }
    Ok(vec![s])
}

/// The Graph and Special families.
pub const FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "constantLine",
        group: "Special",
        description: "Takes a float F.\n\nDraws a horizontal line at value F across the graph.\n\nExample:\n\n.. code-block:: none\n\n  &target=constantLine(123.456)",
        params: &[Param::req("value", T::Float)],
        aggregator: false,
        imp: constant_line_fn,
    },
    FunctionDef {
        name: "threshold",
        group: "Graph",
        description: "Takes a float F, followed by a label (in double quotes) and a color.\n(See ``bgcolor`` in the :doc:`Render API <render_api>` for valid color names & formats.)\n\nDraws a horizontal line at value F across the graph.\n\nExample:\n\n.. code-block:: none\n\n  &target=threshold(123.456, \"omgwtfbbq\", \"red\")",
        params: &[Param::req("value", T::Float), Param::opt("label", T::String), Param::opt("color", T::String)],
        aggregator: false,
        imp: threshold,
    },
];

#[cfg(test)]
mod tests {
    use super::super::testing::eval;

    #[test]
    fn constant_lines_need_no_data() {
        let s = eval(&[], "constantLine(100)", 1000, 2000).unwrap();
        assert_eq!(s[0].name, "100.0");
        assert_eq!(s[0].datapoints(), vec![(Some(100.0), 1000), (Some(100.0), 1500), (Some(100.0), 2000)]);
        let s = eval(&[], "threshold(4, 'max load', 'red')", 1000, 2000).unwrap();
        assert_eq!(s[0].name, "max load");
        assert_eq!(s[0].hints.color.as_deref(), Some("red"));
    }
}
