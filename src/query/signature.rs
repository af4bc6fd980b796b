//! A function's signature as graphite-web declares it, and the binding of a call to it.
//!
//! Owns graphite-web's `Param`/`ParamTypes` ([`Param`], [`ParamType`], [`ParamDefault`]), the
//! [`FunctionDef`] every function declares beside its implementation (name, group, docstring,
//! params; what `/functions` prints as graphite-web's `functionInfo`), and [`Args`]: a call's
//! arguments bound to the parameters as graphite-web's `validateParams` binds them (positional
//! first, the last parameter taking the rest when it is `multiple`, then keywords),
//! type-checked, and evaluated on demand. Where graphite-web's Param list and its Python
//! signature disagree, `/functions` shows the Param and a call gets what the Python function
//! gets ([`PythonDefault`]): `tests/function_signatures.rs` checks both against graphite-web.
//!
//! It must never know a function by name nor hold the list of them: the registry is
//! `functions::all`/`functions::lookup`, and each family declares its own definitions.

use serde_json::{json, Map, Value as Json};

use super::ast::{Call, Expr};
use super::eval::{EvalContext, EvalError, Value};
use super::series::Series;

/// graphite-web's `ParamTypes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// `true`/`false`, also `'true'`, 0, 1.
    Boolean,
    /// A time reference.
    Date,
    /// A number.
    Float,
    /// An integer (a float is refused).
    Integer,
    /// A time offset string (`'5min'`).
    Interval,
    /// An integer count or a time offset string.
    IntOrInterval,
    /// An integer or `inf`.
    IntOrInf,
    /// A node index.
    Node,
    /// A node index or a tag name.
    NodeOrTag,
    /// One series.
    Series,
    /// A series list.
    SeriesList,
    /// Several series lists.
    SeriesLists,
    /// A string.
    String,
    /// A tag name.
    Tag,
    /// Anything.
    Any,
    /// An aggregation function name (`average`, `sum`, …).
    AggFunc,
    /// An aggregation function or an aggregating series function.
    AggOrSeriesFunc,
}

impl ParamType {
    /// graphite-web's type name, as `/functions` prints it.
    pub fn name(self) -> &'static str {
        match self {
            ParamType::Boolean => "boolean",
            ParamType::Date => "date",
            ParamType::Float => "float",
            ParamType::Integer => "integer",
            ParamType::Interval => "interval",
            ParamType::IntOrInterval => "intOrInterval",
            ParamType::IntOrInf => "intOrInf",
            ParamType::Node => "node",
            ParamType::NodeOrTag => "nodeOrTag",
            ParamType::Series => "series",
            ParamType::SeriesList => "seriesList",
            ParamType::SeriesLists => "seriesLists",
            ParamType::String => "string",
            ParamType::Tag => "tag",
            ParamType::Any => "any",
            ParamType::AggFunc => "aggFunc",
            ParamType::AggOrSeriesFunc => "aggOrSeriesFunc",
        }
    }

    fn is_series(self) -> bool {
        matches!(
            self,
            ParamType::Series | ParamType::SeriesList | ParamType::SeriesLists
        )
    }
}

/// A parameter default, as `/functions` shows it (graphite-web's `Param(default=…)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamDefault {
    /// An integer.
    Int(i64),
    /// A float (infinity prints as `1e9999` in JSON).
    Float(f64),
    /// A string.
    Str(&'static str),
    /// A boolean.
    Bool(bool),
}

/// The Python function's own default for an argument, where it is not what graphite-web's
/// `Param` declares. graphite-web's `validateParams` never fills a default in: an argument left
/// out gets the Python default, and with graphite-web's default `ENFORCE_INPUT_VALIDATION =
/// False` a `required` Param whose Python argument has a default may be left out too
/// (`lowest(x)` is `lowest(x, 1, 'average')`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PythonDefault {
    /// The same as the Param's (its `default`, or none when it is `required`).
    AsParam,
    /// Python's `None`: the argument is absent (`round`'s `precision=None`, whose Param says 0).
    None,
    /// A value (`lowest`'s `n=1`, whose Param is `required` without a default).
    Value(ParamDefault),
}

/// A value graphite-web lists among a parameter's options that is not a string, kept there for
/// backward compatibility (smartSummarize's `alignTo` lists `None`, `True` and `False`, the
/// old `alignToFrom` values, which it accepts and ignores).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LegacyOption {
    /// Python's `None`.
    None,
    /// `True`/`False`.
    Bool(bool),
}

impl LegacyOption {
    /// Python's `str()` of it: graphite-web sorts options by `str`.
    fn py_str(self) -> &'static str {
        match self {
            LegacyOption::None => "None",
            LegacyOption::Bool(true) => "True",
            LegacyOption::Bool(false) => "False",
        }
    }

    fn to_json(self) -> Json {
        match self {
            LegacyOption::None => Json::Null,
            LegacyOption::Bool(b) => json!(b),
        }
    }
}

/// One parameter (graphite-web's `Param`, plus what the Python function's own signature says
/// where it differs: its argument name and default).
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Name, as keyword arguments use it.
    pub name: &'static str,
    /// Type.
    pub kind: ParamType,
    /// graphite-web's `required`, as `/functions` shows it; whether a call must give the
    /// argument is [`Param::may_omit`] (the Python signature decides).
    pub required: bool,
    /// graphite-web's `default`, as `/functions` shows it; what an omitted argument gets is
    /// [`Param::call_default`].
    pub default: Option<ParamDefault>,
    /// Whether it takes all remaining positional arguments (`*seriesLists`).
    pub multiple: bool,
    /// Allowed values, when restricted.
    pub options: &'static [&'static str],
    /// Non-string values graphite-web also lists as options ([`LegacyOption`]).
    pub legacy_options: &'static [LegacyOption],
    /// The Python argument's name where graphite-web's Param names it otherwise (timeShift's
    /// Param `alignDst` is the Python `alignDST`): the `function` field shows it, and a
    /// keyword argument may use it as well as the Param's name ([`Args::bind`]).
    pub python_name: Option<&'static str>,
    /// The Python argument's default, where it differs from the Param's.
    pub python_default: PythonDefault,
}

impl Param {
    /// A required parameter.
    pub const fn req(name: &'static str, kind: ParamType) -> Param {
        Param {
            name,
            kind,
            required: true,
            default: None,
            multiple: false,
            options: &[],
            legacy_options: &[],
            python_name: None,
            python_default: PythonDefault::AsParam,
        }
    }

    /// An optional parameter without a default.
    pub const fn opt(name: &'static str, kind: ParamType) -> Param {
        Param {
            name,
            kind,
            required: false,
            default: None,
            multiple: false,
            options: &[],
            legacy_options: &[],
            python_name: None,
            python_default: PythonDefault::AsParam,
        }
    }

    /// An optional parameter with a default.
    pub const fn def(name: &'static str, kind: ParamType, default: ParamDefault) -> Param {
        Param {
            name,
            kind,
            required: false,
            default: Some(default),
            multiple: false,
            options: &[],
            legacy_options: &[],
            python_name: None,
            python_default: PythonDefault::AsParam,
        }
    }

    /// Marks it `multiple` (takes the remaining positional arguments).
    pub const fn many(mut self) -> Param {
        self.multiple = true;
        self
    }

    /// Restricts it to these values.
    pub const fn options(mut self, options: &'static [&'static str]) -> Param {
        self.options = options;
        self
    }

    /// Adds graphite-web's non-string options ([`LegacyOption`]).
    pub const fn legacy_options(mut self, options: &'static [LegacyOption]) -> Param {
        self.legacy_options = options;
        self
    }

    /// Names the Python argument, where graphite-web's Param names it otherwise.
    pub const fn python_name(mut self, name: &'static str) -> Param {
        self.python_name = Some(name);
        self
    }

    /// The Python argument's default, where it differs from the Param's ([`PythonDefault`]).
    pub const fn python_default(mut self, default: PythonDefault) -> Param {
        self.python_default = default;
        self
    }

    /// The default a call that leaves this argument out gets: the Python function's.
    pub fn call_default(&self) -> Option<ParamDefault> {
        match self.python_default {
            PythonDefault::AsParam => self.default,
            PythonDefault::None => None,
            PythonDefault::Value(v) => Some(v),
        }
    }

    /// Whether a call may leave this argument out: not `required`, or its Python argument has
    /// a default (graphite-web's default, non-strict validation lets the call through).
    pub fn may_omit(&self) -> bool {
        !self.required || self.python_default != PythonDefault::AsParam
    }

    fn to_json(self) -> Json {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("type".into(), json!(self.kind.name()));
        if self.required {
            m.insert("required".into(), json!(true));
        }
        if let Some(d) = self.default {
            m.insert(
                "default".into(),
                match d {
                    ParamDefault::Int(i) => json!(i),
                    // JSON has no infinity: a huge number that parses as one, as graphite-web's
                    // encoder writes it (`1e9999`), is produced by the caller's serializer.
                    ParamDefault::Float(f) if f.is_infinite() => json!("inf"),
                    ParamDefault::Float(f) => json!(f),
                    ParamDefault::Str(s) => json!(s),
                    ParamDefault::Bool(b) => json!(b),
                },
            );
        }
        if self.multiple {
            m.insert("multiple".into(), json!(true));
        }
        if !self.options.is_empty() || !self.legacy_options.is_empty() {
            // Sorted by Python's `str`, as graphite-web's `Param.options`.
            let mut o: Vec<(&str, Json)> = self.options.iter().map(|s| (*s, json!(s))).collect();
            o.extend(
                self.legacy_options
                    .iter()
                    .map(|l| (l.py_str(), l.to_json())),
            );
            o.sort_by(|a, b| a.0.cmp(b.0));
            m.insert(
                "options".into(),
                Json::Array(o.into_iter().map(|(_, j)| j).collect()),
            );
        }
        Json::Object(m)
    }

    /// This argument in graphite-web's `function` field, which `inspect.formatargspec` writes
    /// from the Python signature.
    fn signature(self) -> String {
        let name = self.python_name.unwrap_or(self.name);
        if self.multiple {
            return format!("*{name}");
        }
        match (self.may_omit(), self.call_default()) {
            (false, _) => name.to_string(),
            (true, None) => format!("{name}=None"),
            (true, Some(ParamDefault::Int(i))) => format!("{name}={i}"),
            (true, Some(ParamDefault::Float(f))) if f.is_infinite() => format!("{name}=inf"),
            (true, Some(ParamDefault::Float(f))) => {
                format!("{name}={}", crate::python::repr_f64(f))
            }
            (true, Some(ParamDefault::Str(s))) => format!("{name}='{s}'"),
            (true, Some(ParamDefault::Bool(b))) => {
                format!("{name}={}", if b { "True" } else { "False" })
            }
        }
    }
}

/// What evaluates a function: the context and the bound arguments, to a series list.
pub type FuncImpl = fn(&EvalContext<'_>, &Args<'_>) -> Result<Vec<Series>, EvalError>;

/// A function of the target language, declared as a `const` right under its implementation
/// (graphite-web sets `group` and `params` on the Python function the same way) and listed
/// in its family's `FUNCTIONS`.
pub struct FunctionDef {
    /// Name as targets call it.
    pub name: &'static str,
    /// graphite-web's group (`Combine`, `Transform`, `Calculate`, `Filter Series`, `Sorting`,
    /// `Alias`, `Graph`, `Special`).
    pub group: &'static str,
    /// Documentation (graphite-web's docstring, reStructuredText).
    pub description: &'static str,
    /// Parameters in order.
    pub params: &'static [Param],
    /// Whether it aggregates several series into one (listed in `aggOrSeriesFunc` options).
    pub aggregator: bool,
    /// The implementation.
    pub imp: FuncImpl,
}

impl FunctionDef {
    /// The same function under another name, as graphite-web's `SeriesFunctions` lists one
    /// Python function under several keys (`'sum': sumSeries`): the alias shows the
    /// original's group, docstring and params in `/functions`, and only its name (which
    /// calls, signatures and error messages use) differs.
    pub const fn alias(&self, name: &'static str) -> FunctionDef {
        FunctionDef { name, ..*self }
    }

    /// graphite-web's `function` field: `name(param, opt=default, *many)`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self.params.iter().map(|p| p.signature()).collect();
        format!("{}({})", self.name, params.join(", "))
    }

    /// The `/functions` entry (graphite-web's `functionInfo`).
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("function".into(), json!(self.signature()));
        m.insert("description".into(), json!(self.description));
        m.insert("module".into(), json!("graphite.render.functions"));
        m.insert("group".into(), json!(self.group));
        if self.aggregator {
            m.insert("aggregator".into(), json!(true));
        }
        m.insert(
            "params".into(),
            Json::Array(self.params.iter().map(|p| p.to_json()).collect()),
        );
        Json::Object(m)
    }
}

enum Bound<'a> {
    One(&'a Expr),
    Many(Vec<&'a Expr>),
}

/// A call's arguments bound to its function's parameters; values are evaluated on access.
pub struct Args<'a> {
    def: &'static FunctionDef,
    call: &'a Call,
    bound: Vec<Option<Bound<'a>>>,
    ctx: &'a EvalContext<'a>,
}

fn bad(msg: String) -> EvalError {
    EvalError::BadRequest(msg)
}

impl<'a> Args<'a> {
    /// Binds `call`'s arguments to `def`'s parameters as graphite-web's `validateParams`:
    /// errors for too many arguments, unknown or duplicate keywords, missing required
    /// parameters, and literals of the wrong type or outside the options.
    pub fn bind(
        def: &'static FunctionDef,
        call: &'a Call,
        ctx: &'a EvalContext<'a>,
    ) -> Result<Args<'a>, EvalError> {
        let params = def.params;
        let mut bound: Vec<Option<Bound<'a>>> = (0..params.len()).map(|_| None).collect();
        let n = call.args.len();
        if n > 0 {
            let last_multiple = params.last().is_some_and(|p| p.multiple);
            if n > params.len() && !last_multiple {
                return Err(bad(format!(
                    "Too many parameters specified for function \"{}\" (takes at most {}, got {n})",
                    def.name,
                    params.len()
                )));
            }
            for (i, arg) in call.args.iter().enumerate() {
                let pi = i.min(params.len() - 1);
                if params[pi].multiple {
                    match &mut bound[pi] {
                        Some(Bound::Many(v)) => v.push(arg),
                        slot => *slot = Some(Bound::Many(vec![arg])),
                    }
                } else {
                    bound[pi] = Some(Bound::One(arg));
                }
            }
        }
        for (key, value) in &call.kwargs {
            // By the Param's name, as graphite-web's `validateParams`, or by the Python
            // argument's, which graphite-web's default non-strict validation passes on to the
            // function (`timeShift(x, '1d', alignDST=true)`).
            let Some(pi) = params.iter().position(|p| {
                p.name == key || (!p.multiple && p.python_name == Some(key.as_str()))
            }) else {
                return Err(bad(format!(
                    "Unexpected key word arguments: {key} (function \"{}\")",
                    def.name
                )));
            };
            if bound[pi].is_some() {
                return Err(bad(format!(
                    "Parameter \"{key}\" of function \"{}\" given twice",
                    def.name
                )));
            }
            bound[pi] = Some(if params[pi].multiple {
                Bound::Many(vec![value])
            } else {
                Bound::One(value)
            });
        }
        for (p, b) in params.iter().zip(&bound) {
            let given = match b {
                None => false,
                Some(Bound::One(Expr::None)) => false,
                Some(_) => true,
            };
            if !p.may_omit() && !given {
                return Err(bad(format!(
                    "Missing required parameter \"{}\" for function \"{}\"",
                    p.name, def.name
                )));
            }
            if let Some(b) = b {
                let exprs: Vec<&Expr> = match b {
                    Bound::One(e) => vec![e],
                    Bound::Many(v) => v.clone(),
                };
                for e in exprs {
                    check_literal(def, p, e)?;
                }
            }
        }
        Ok(Args {
            def,
            call,
            bound,
            ctx,
        })
    }

    /// The function being called.
    pub fn def(&self) -> &'static FunctionDef {
        self.def
    }

    /// The call as written.
    pub fn call(&self) -> &'a Call {
        self.call
    }

    fn index(&self, name: &str) -> usize {
        self.def
            .params
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("function {} has no parameter {name}", self.def.name))
    }

    /// The raw expression bound to a single-valued parameter, if given (for functions that
    /// re-evaluate an argument over another time range).
    pub fn expr(&self, name: &str) -> Option<&'a Expr> {
        match &self.bound[self.index(name)] {
            Some(Bound::One(e)) => Some(e),
            Some(Bound::Many(v)) => v.first().copied(),
            None => None,
        }
    }

    /// The raw expressions bound to a parameter (several for a `multiple` one).
    pub fn exprs(&self, name: &str) -> Vec<&'a Expr> {
        match &self.bound[self.index(name)] {
            Some(Bound::One(e)) => vec![e],
            Some(Bound::Many(v)) => v.clone(),
            None => Vec::new(),
        }
    }

    /// Whether the parameter was given (and not as `None`).
    pub fn has(&self, name: &str) -> bool {
        !matches!(self.value_expr(name), None | Some(Expr::None))
    }

    fn value_expr(&self, name: &str) -> Option<&'a Expr> {
        self.expr(name)
    }

    fn value(&self, name: &str) -> Result<Option<Value>, EvalError> {
        match self.value_expr(name) {
            None | Some(Expr::None) => Ok(None),
            Some(e) => self.ctx.eval_value(e).map(Some),
        }
    }

    /// What an omitted argument gets: the Python function's default ([`Param::call_default`]).
    fn default(&self, name: &str) -> Option<ParamDefault> {
        self.def.params[self.index(name)].call_default()
    }

    /// The series list of a `seriesList` parameter (evaluated now). An absent optional one
    /// is empty.
    pub fn series_list(&self, name: &str) -> Result<Vec<Series>, EvalError> {
        match self.value_expr(name) {
            None | Some(Expr::None) => Ok(Vec::new()),
            Some(e) => self.ctx.eval_series(e),
        }
    }

    /// Every series list of a `multiple` series parameter, in order.
    pub fn series_lists(&self, name: &str) -> Result<Vec<Vec<Series>>, EvalError> {
        self.exprs(name)
            .into_iter()
            .map(|e| self.ctx.eval_series(e))
            .collect()
    }

    /// A number parameter: the given value (ints widen), else the default, else `None`.
    pub fn opt_float(&self, name: &str) -> Result<Option<f64>, EvalError> {
        match self.value(name)? {
            Some(Value::Int(i)) => Ok(Some(i as f64)),
            Some(Value::Float(f)) => Ok(Some(f)),
            Some(Value::Bool(b)) => Ok(Some(b as u8 as f64)),
            Some(Value::Str(s)) => s
                .trim()
                .parse::<f64>()
                .map(Some)
                .map_err(|_| self.type_error(name, &format!("'{s}'"))),
            Some(Value::Series(_)) => Err(self.type_error(name, "a series list")),
            Some(Value::None) | None => Ok(match self.default(name) {
                Some(ParamDefault::Float(f)) => Some(f),
                Some(ParamDefault::Int(i)) => Some(i as f64),
                _ => None,
            }),
        }
    }

    /// A required number parameter.
    pub fn float(&self, name: &str) -> Result<f64, EvalError> {
        self.opt_float(name)?.ok_or_else(|| self.missing(name))
    }

    /// An integer parameter (a float with a fraction is refused).
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, EvalError> {
        match self.value(name)? {
            Some(Value::Int(i)) => Ok(Some(i)),
            Some(Value::Float(f)) if f.fract() == 0.0 && f.is_finite() => Ok(Some(f as i64)),
            Some(Value::Bool(b)) => Ok(Some(b as i64)),
            Some(Value::Str(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| self.type_error(name, &format!("'{s}'"))),
            Some(Value::Float(f)) => Err(self.type_error(name, &crate::python::repr_f64(f))),
            Some(Value::Series(_)) => Err(self.type_error(name, "a series list")),
            Some(Value::None) | None => Ok(match self.default(name) {
                Some(ParamDefault::Int(i)) => Some(i),
                _ => None,
            }),
        }
    }

    /// A required integer parameter.
    pub fn int(&self, name: &str) -> Result<i64, EvalError> {
        self.opt_int(name)?.ok_or_else(|| self.missing(name))
    }

    /// A string parameter: the given value, else the default.
    pub fn opt_str(&self, name: &str) -> Result<Option<String>, EvalError> {
        match self.value(name)? {
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(Value::Int(i)) => Ok(Some(i.to_string())),
            Some(Value::Float(f)) => Ok(Some(crate::python::repr_f64(f))),
            Some(Value::Bool(b)) => Ok(Some(if b { "True" } else { "False" }.to_string())),
            Some(Value::Series(_)) => Err(self.type_error(name, "a series list")),
            Some(Value::None) | None => Ok(match self.default(name) {
                Some(ParamDefault::Str(s)) => Some(s.to_string()),
                _ => None,
            }),
        }
    }

    /// A required string parameter.
    pub fn string(&self, name: &str) -> Result<String, EvalError> {
        self.opt_str(name)?.ok_or_else(|| self.missing(name))
    }

    /// A boolean parameter, as graphite-web's `validateBoolean`.
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, EvalError> {
        match self.value(name)? {
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(Value::Int(0)) => Ok(Some(false)),
            Some(Value::Int(1)) => Ok(Some(true)),
            Some(Value::Float(0.0)) => Ok(Some(false)),
            Some(Value::Float(1.0)) => Ok(Some(true)),
            Some(Value::Str(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::Str(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(Value::None) | None => Ok(match self.default(name) {
                Some(ParamDefault::Bool(b)) => Some(b),
                _ => None,
            }),
            Some(_) => Err(self.type_error(name, "that value")),
        }
    }

    /// A boolean parameter with `false` when absent and without default.
    pub fn bool(&self, name: &str) -> Result<bool, EvalError> {
        Ok(self.opt_bool(name)?.unwrap_or(false))
    }

    /// The evaluated literal values of a `multiple` parameter (nodes, strings, …).
    pub fn values(&self, name: &str) -> Result<Vec<Value>, EvalError> {
        self.exprs(name)
            .into_iter()
            .map(|e| self.ctx.eval_value(e))
            .collect()
    }

    /// Any evaluated value of a single parameter (`None` when absent).
    pub fn raw_value(&self, name: &str) -> Result<Option<Value>, EvalError> {
        self.value(name)
    }

    fn missing(&self, name: &str) -> EvalError {
        bad(format!(
            "Missing required parameter \"{name}\" for function \"{}\"",
            self.def.name
        ))
    }

    fn type_error(&self, name: &str, got: &str) -> EvalError {
        let kind = self.def.params[self.index(name)].kind.name();
        bad(format!(
            "Invalid \"{kind}\" value specified for function \"{}\" parameter \"{name}\": {got}",
            self.def.name
        ))
    }
}

fn check_literal(def: &FunctionDef, p: &Param, e: &Expr) -> Result<(), EvalError> {
    let invalid = |got: String| {
        Err(bad(format!(
            "Invalid \"{}\" value specified for function \"{}\" parameter \"{}\": {got}",
            p.kind.name(),
            def.name,
            p.name
        )))
    };
    if matches!(e, Expr::None) {
        return Ok(());
    }
    if p.kind.is_series() {
        return match e {
            Expr::Path(_) | Expr::Call(_) | Expr::Template(_) => Ok(()),
            Expr::Str(s) => invalid(format!("'{s}' (a string, where a series list is expected)")),
            other => invalid(format!("{other:?} (where a series list is expected)")),
        };
    }
    if !p.options.is_empty() {
        // graphite-web's `value not in self.options`, with Python's equality: `1 == True`.
        let listed = match e {
            Expr::Str(s) => Some(p.options.contains(&s.as_str())),
            Expr::Bool(b) => Some(p.legacy_options.contains(&LegacyOption::Bool(*b))),
            Expr::Int(i) => Some(
                (*i == 0 || *i == 1) && p.legacy_options.contains(&LegacyOption::Bool(*i == 1)),
            ),
            Expr::Float(f) => Some(
                (*f == 0.0 || *f == 1.0)
                    && p.legacy_options.contains(&LegacyOption::Bool(*f == 1.0)),
            ),
            _ => None,
        };
        if listed == Some(false) {
            let got = match e {
                Expr::Str(s) => format!("'{s}'"),
                Expr::Float(f) => crate::python::repr_f64(*f),
                Expr::Bool(true) => "True".to_string(),
                Expr::Bool(false) => "False".to_string(),
                Expr::Int(i) => i.to_string(),
                _ => String::new(),
            };
            return Err(bad(format!(
                "Invalid option specified for function \"{}\" parameter \"{}\": {got} (one of {})",
                def.name,
                p.name,
                p.options.join(", ")
            )));
        }
    }
    match (p.kind, e) {
        (ParamType::Integer | ParamType::Node, Expr::Float(f)) if f.fract() != 0.0 => {
            invalid(crate::python::repr_f64(*f))
        }
        (ParamType::Integer | ParamType::Node | ParamType::Float, Expr::Str(s))
            if s.trim().parse::<f64>().is_err() =>
        {
            invalid(format!("'{s}'"))
        }
        (ParamType::Interval, Expr::Str(s)) => match super::attime::parse_time_offset(s) {
            Ok(_) => Ok(()),
            Err(err) => invalid(format!("'{s}': {err}")),
        },
        (ParamType::Boolean, Expr::Str(s))
            if !s.eq_ignore_ascii_case("true") && !s.eq_ignore_ascii_case("false") =>
        {
            invalid(format!("'{s}'"))
        }
        _ => Ok(()),
    }
}
