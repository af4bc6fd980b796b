//! The target language's syntax tree, as graphite-web's grammar defines it.

/// One expression of a target.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A path expression, globs and all (`collectd.*.load.{short,mid}term`), escapes kept.
    Path(String),
    /// A function call.
    Call(Call),
    /// A quoted string, without its quotes; backslashes are kept as written (graphite-web does
    /// not unescape, so `'\1'` stays a backslash and a digit for `aliasSub`).
    Str(String),
    /// An integer literal.
    Int(i64),
    /// A float literal (including exponents and `inf`).
    Float(f64),
    /// `true` / `false` (any case).
    Bool(bool),
    /// `None` (any case).
    None,
    /// `template(expr, …)`: `$name` / `$1` in `expr`'s path expressions replaced by the given
    /// arguments, then by the request's `template[name]` parameters.
    Template(Box<Template>),
}

/// A function call: `name(args…, key=value…)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// Function name as written.
    pub name: String,
    /// Positional arguments.
    pub args: Vec<Expr>,
    /// Keyword arguments, in the order written.
    pub kwargs: Vec<(String, Expr)>,
    /// The call's source text (graphite-web hands `seriesByTag` its raw text).
    pub raw: String,
    /// Character offset of the call in the target (for error messages).
    pub position: usize,
}

/// `template(expr, positional literals…, key=literal…)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// The templated expression.
    pub expr: Expr,
    /// `$1`, `$2`, … in order.
    pub args: Vec<Expr>,
    /// `$name` values.
    pub kwargs: Vec<(String, Expr)>,
}

impl Expr {
    /// Every path expression in the tree (for prefetching and limits).
    pub fn paths<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Path(p) => out.push(p),
            Expr::Call(c) => {
                for a in &c.args {
                    a.paths(out);
                }
                for (_, a) in &c.kwargs {
                    a.paths(out);
                }
            }
            Expr::Template(t) => t.expr.paths(out),
            _ => {}
        }
    }

    /// Nesting depth of calls (a path is 0).
    pub fn depth(&self) -> usize {
        match self {
            Expr::Call(c) => 1 + c.args.iter().chain(c.kwargs.iter().map(|(_, e)| e)).map(Expr::depth).max().unwrap_or(0),
            Expr::Template(t) => 1 + t.expr.depth(),
            _ => 0,
        }
    }
}
