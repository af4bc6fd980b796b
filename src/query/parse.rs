//! A nom parser for graphite-web's target grammar: nested calls with positional and keyword
//! arguments, strings in both quote styles, integers, floats (exponents, negatives, `inf`),
//! booleans, `None`, path expressions with `*`, `?`, `[…]`, `{a,b}` and `\` escapes anywhere in
//! a node, pipes (`a.b | sumSeries()`), and `template(…)`.
//!
//! A target that does not parse gives a [`ParseError`] saying what was expected at which
//! character, which the API returns as HTTP 400.

use std::fmt;

use nom::branch::alt;
use nom::bytes::complete::{take_while, take_while1};
use nom::character::complete::{char, digit1, one_of};
use nom::combinator::{opt, recognize};
use nom::sequence::{pair, preceded};
use nom::{IResult, Parser};

use super::ast::{Call, Expr, Template};

/// A target that does not parse.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// The target as given.
    pub target: String,
    /// 0-based character offset where parsing stopped.
    pub position: usize,
    /// What was expected there.
    pub expected: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let found: String = self.target.chars().skip(self.position).take(20).collect();
        let found = if found.is_empty() {
            "end of target".to_string()
        } else {
            format!("'{found}'")
        };
        write!(
            f,
            "invalid target '{}': expected {} at character {}, found {}",
            self.target, self.expected, self.position, found
        )
    }
}

impl std::error::Error for ParseError {}

type In<'a> = &'a str;
/// (remaining input at the failure, what was expected)
type Res<'a, T> = IResult<In<'a>, T, Fail<'a>>;

#[derive(Debug)]
struct Fail<'a> {
    at: In<'a>,
    expected: String,
}

impl<'a> nom::error::ParseError<In<'a>> for Fail<'a> {
    fn from_error_kind(input: In<'a>, kind: nom::error::ErrorKind) -> Self {
        Fail {
            at: input,
            expected: format!("{kind:?}"),
        }
    }
    fn append(_: In<'a>, _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
    fn or(self, other: Self) -> Self {
        // Keep the failure that got furthest.
        if other.at.len() < self.at.len() {
            other
        } else {
            self
        }
    }
}

fn fail<'a, T>(at: In<'a>, expected: &str) -> Res<'a, T> {
    Err(nom::Err::Error(Fail {
        at,
        expected: expected.to_string(),
    }))
}

fn cut_fail<'a, T>(at: In<'a>, expected: &str) -> Res<'a, T> {
    Err(nom::Err::Failure(Fail {
        at,
        expected: expected.to_string(),
    }))
}

fn ws(i: In<'_>) -> Res<'_, In<'_>> {
    take_while(|c: char| c.is_whitespace()).parse(i)
}

const SYMBOLS: &str = "(){},.'\"\\|";

fn is_metric_char(c: char) -> bool {
    !c.is_whitespace() && !c.is_control() && !SYMBOLS.contains(c)
}

fn identifier(i: In<'_>) -> Res<'_, In<'_>> {
    recognize(pair(
        take_while1(|c: char| c.is_ascii_alphabetic() || c == '_'),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '_'),
    ))
    .parse(i)
}

/// `\x` escape or a run of metric characters.
fn partial(i: In<'_>) -> Res<'_, In<'_>> {
    recognize(nom::multi::many1(alt((
        recognize(pair(char('\\'), one_of("(){},.'\"\\|="))),
        take_while1(is_metric_char),
    ))))
    .parse(i)
}

fn match_enum(i: In<'_>) -> Res<'_, In<'_>> {
    let (rest, _) = char('{').parse(i)?;
    let mut rest = rest;
    loop {
        let (r, _) = opt(partial).parse(rest)?;
        rest = r;
        if let Ok((r, _)) = char::<_, Fail>(',').parse(rest) {
            rest = r;
            continue;
        }
        break;
    }
    match char::<_, Fail>('}').parse(rest) {
        Ok((r, _)) => Ok((r, &i[..i.len() - r.len()])),
        Err(_) => cut_fail(rest, "'}' closing the '{' alternatives"),
    }
}

fn path_element(i: In<'_>) -> Res<'_, In<'_>> {
    recognize(nom::multi::many1(alt((match_enum, partial)))).parse(i)
}

fn path_expression(i: In<'_>) -> Res<'_, Expr> {
    let (rest, p) = recognize(pair(
        path_element,
        nom::multi::many0(preceded(char('.'), path_element)),
    ))
    .parse(i)?;
    Ok((rest, Expr::Path(p.to_string())))
}

fn string_lit(i: In<'_>) -> Res<'_, Expr> {
    let quote = match i.chars().next() {
        Some(q @ ('\'' | '"')) => q,
        _ => return fail(i, "a string"),
    };
    let body = &i[1..];
    let mut chars = body.char_indices();
    while let Some((idx, c)) = chars.next() {
        if c == '\\' {
            chars.next();
        } else if c == quote {
            return Ok((&body[idx + 1..], Expr::Str(body[..idx].to_string())));
        } else if c == '\n' || c == '\r' {
            break;
        }
    }
    cut_fail(i, &format!("a closing {quote} for the string"))
}

/// True when the next non-space character ends an argument.
fn at_arg_end(i: In<'_>) -> bool {
    let t = i.trim_start();
    t.is_empty() || t.starts_with(',') || t.starts_with(')')
}

fn number(i: In<'_>) -> Res<'_, Expr> {
    let (rest, text) = recognize((
        opt(char('-')),
        digit1,
        opt(pair(char('.'), digit1)),
        opt((one_of("eE"), opt(char('-')), digit1)),
    ))
    .parse(i)?;
    if !at_arg_end(rest) {
        return fail(i, "a number");
    }
    let is_int = !text.contains(['.', 'e', 'E']);
    if is_int {
        if let Ok(n) = text.parse::<i64>() {
            return Ok((rest, Expr::Int(n)));
        }
    }
    match text.parse::<f64>() {
        Ok(f) => Ok((rest, Expr::Float(f))),
        Err(_) => fail(i, "a number"),
    }
}

fn keyword(i: In<'_>) -> Res<'_, Expr> {
    let (rest, word) = identifier(i)?;
    if !at_arg_end(rest) {
        return fail(i, "a keyword");
    }
    match word.to_ascii_lowercase().as_str() {
        "true" => Ok((rest, Expr::Bool(true))),
        "false" => Ok((rest, Expr::Bool(false))),
        "none" => Ok((rest, Expr::None)),
        "inf" => Ok((rest, Expr::Float(f64::INFINITY))),
        _ => fail(i, "a keyword"),
    }
}

/// The recursive part of the grammar (expressions, pipes, calls, their arguments, `template`):
/// it carries the whole target, to give a call its character position, and the nesting depth
/// of calls, to refuse one deeper than `max_depth`. The leaves (paths, strings, numbers,
/// keywords) are the plain functions above.
struct TargetParser<'t> {
    full: &'t str,
    depth: usize,
    max_depth: usize,
}

impl<'t> TargetParser<'t> {
    fn pos(&self, i: In<'_>) -> usize {
        self.full[..self.full.len() - i.len()].chars().count()
    }

    fn arg<'a>(&mut self, i: In<'a>) -> Res<'a, Expr> {
        let (i, _) = ws(i)?;
        if let Ok(r) = keyword(i) {
            return Ok(r);
        }
        if let Ok(r) = number(i) {
            return Ok(r);
        }
        if i.starts_with(['\'', '"']) {
            return string_lit(i);
        }
        self.expression(i)
    }

    /// `(args, kwargs)` up to and including `)`.
    #[allow(clippy::type_complexity)]
    fn arguments<'a>(
        &mut self,
        i: In<'a>,
        literal_only: bool,
    ) -> Res<'a, (Vec<Expr>, Vec<(String, Expr)>)> {
        let mut args = Vec::new();
        let mut kwargs: Vec<(String, Expr)> = Vec::new();
        let (mut i, _) = ws(i)?;
        if let Ok((r, _)) = char::<_, Fail>(')').parse(i) {
            return Ok((r, (args, kwargs)));
        }
        loop {
            let (r, _) = ws(i)?;
            i = r;
            // keyword argument?
            let kw = identifier(i).ok().and_then(|(r, name)| {
                let (r, _) = ws(r).ok()?;
                let r = r.strip_prefix('=')?;
                if r.starts_with('=') || r.starts_with('~') {
                    return None;
                }
                Some((r, name))
            });
            let start = i;
            if let Some((r, name)) = kw {
                let (r, value) = self.arg(r)?;
                if literal_only && !matches!(value, Expr::Str(_) | Expr::Int(_) | Expr::Float(_)) {
                    return cut_fail(r, "a string or number as template() argument");
                }
                kwargs.push((name.to_string(), value));
                i = r;
            } else {
                if !kwargs.is_empty() {
                    return cut_fail(
                        start,
                        "a keyword argument (positional arguments cannot follow keyword arguments)",
                    );
                }
                let (r, value) =
                    match self.arg(i) {
                        Ok(x) => x,
                        Err(nom::Err::Error(e)) => return Err(nom::Err::Failure(Fail {
                            at: e.at,
                            expected:
                                "an argument (path, function call, string, number, boolean or None)"
                                    .into(),
                        })),
                        Err(e) => return Err(e),
                    };
                if literal_only && !matches!(value, Expr::Str(_) | Expr::Int(_) | Expr::Float(_)) {
                    return cut_fail(start, "a string or number as template() argument");
                }
                args.push(value);
                i = r;
            }
            let (r, _) = ws(i)?;
            i = r;
            if let Ok((r, _)) = char::<_, Fail>(',').parse(i) {
                i = r;
                continue;
            }
            if let Ok((r, _)) = char::<_, Fail>(')').parse(i) {
                return Ok((r, (args, kwargs)));
            }
            return cut_fail(i, "',' or ')'");
        }
    }

    fn call<'a>(&mut self, i: In<'a>) -> Res<'a, Expr> {
        let start = i;
        let (r, name) = identifier(i)?;
        let (r, _) = ws(r)?;
        let Ok((r, _)) = char::<_, Fail>('(').parse(r) else {
            return fail(i, "a function call");
        };
        self.depth += 1;
        if self.depth > self.max_depth {
            return cut_fail(
                start,
                &format!("at most {} nested function calls", self.max_depth),
            );
        }
        let position = self.pos(start);
        if name == "template" {
            let (r2, _) = ws(r)?;
            let (r2, inner) = match self.call(r2) {
                Ok(x) => x,
                Err(nom::Err::Error(_)) => match path_expression(r2) {
                    Ok(x) => x,
                    Err(_) => {
                        return cut_fail(r2, "a function call or path expression inside template()")
                    }
                },
                Err(e) => return Err(e),
            };
            let (r2, _) = ws(r2)?;
            let (r2, (args, kwargs)) = if let Ok((r3, _)) = char::<_, Fail>(',').parse(r2) {
                self.arguments(r3, true)?
            } else if let Ok((r3, _)) = char::<_, Fail>(')').parse(r2) {
                (r3, (Vec::new(), Vec::new()))
            } else {
                return cut_fail(r2, "',' or ')'");
            };
            self.depth -= 1;
            return Ok((
                r2,
                Expr::Template(Box::new(Template {
                    expr: inner,
                    args,
                    kwargs,
                })),
            ));
        }
        let (r, (args, kwargs)) = self.arguments(r, false)?;
        self.depth -= 1;
        let raw = start[..start.len() - r.len()].to_string();
        Ok((
            r,
            Expr::Call(Call {
                name: name.to_string(),
                args,
                kwargs,
                raw,
                position,
            }),
        ))
    }

    fn expression<'a>(&mut self, i: In<'a>) -> Res<'a, Expr> {
        let (i, _) = ws(i)?;
        let (mut rest, mut expr) = match self.call(i) {
            Ok(x) => x,
            Err(nom::Err::Error(_)) => match path_expression(i) {
                Ok(x) => x,
                Err(nom::Err::Failure(f)) => return Err(nom::Err::Failure(f)),
                Err(_) => return fail(i, "a path expression or function call"),
            },
            Err(e) => return Err(e),
        };
        // Pipes: `expr | f(args)` is `f(expr, args)`.
        loop {
            let (r, _) = ws(rest)?;
            let Ok((r, _)) = char::<_, Fail>('|').parse(r) else {
                break;
            };
            let (r, _) = ws(r)?;
            let (r, piped) = match self.call(r) {
                Ok(x) => x,
                Err(nom::Err::Error(_)) => return cut_fail(r, "a function call after '|'"),
                Err(e) => return Err(e),
            };
            let Expr::Call(mut call) = piped else {
                return cut_fail(r, "a function call after '|'");
            };
            call.args.insert(0, expr);
            expr = Expr::Call(call);
            rest = r;
        }
        Ok((rest, expr))
    }
}

/// Parses one target. `max_depth` bounds the nesting of calls.
pub fn parse_target(target: &str, max_depth: usize) -> Result<Expr, ParseError> {
    let mut p = TargetParser {
        full: target,
        depth: 0,
        max_depth,
    };
    let err = |at: In<'_>, expected: String| ParseError {
        target: target.to_string(),
        position: target[..target.len() - at.len()].chars().count(),
        expected,
    };
    match p.expression(target) {
        Ok((rest, expr)) => {
            let (rest, _) = ws(rest).map_err(|_| err(rest, "end of target".into()))?;
            if !rest.is_empty() {
                return Err(err(
                    rest,
                    "end of target (or ',' / ')' inside a call)".into(),
                ));
            }
            Ok(expr)
        }
        Err(nom::Err::Error(f) | nom::Err::Failure(f)) => Err(err(f.at, f.expected)),
        Err(nom::Err::Incomplete(_)) => Err(err("", "more input".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Expr {
        parse_target(s, 64).unwrap_or_else(|e| panic!("{e}"))
    }

    fn call(e: &Expr) -> &Call {
        match e {
            Expr::Call(c) => c,
            other => panic!("not a call: {other:?}"),
        }
    }

    #[test]
    fn paths_with_globs() {
        assert_eq!(p("a.b.c"), Expr::Path("a.b.c".into()));
        assert_eq!(
            p("collectd.*.load.{short,mid}term"),
            Expr::Path("collectd.*.load.{short,mid}term".into())
        );
        assert_eq!(p("a.b[0-9]?.c"), Expr::Path("a.b[0-9]?.c".into()));
        assert_eq!(p("a.b\\(x\\).c"), Expr::Path("a.b\\(x\\).c".into()));
        assert_eq!(p(" a.b "), Expr::Path("a.b".into()));
        assert_eq!(p("name;tag=value"), Expr::Path("name;tag=value".into()));
    }

    #[test]
    fn calls_and_literals() {
        let e = p("sumSeries(a.*, b.{x,y})");
        let c = call(&e);
        assert_eq!(c.name, "sumSeries");
        assert_eq!(
            c.args,
            vec![Expr::Path("a.*".into()), Expr::Path("b.{x,y}".into())]
        );
        let e = p("f(1, -2.5, 1e3, -3E-2, 'x y', \"q\", true, False, None, inf)");
        assert_eq!(
            call(&e).args,
            vec![
                Expr::Int(1),
                Expr::Float(-2.5),
                Expr::Float(1000.0),
                Expr::Float(-0.03),
                Expr::Str("x y".into()),
                Expr::Str("q".into()),
                Expr::Bool(true),
                Expr::Bool(false),
                Expr::None,
                Expr::Float(f64::INFINITY)
            ]
        );
        let e = p("aliasSub(a.b, '(^.*$)', '\\1 A')");
        assert_eq!(call(&e).args[2], Expr::Str("\\1 A".into()));
        let e = p("movingAverage(a, windowSize='5min', xFilesFactor=0.5)");
        assert_eq!(
            call(&e).kwargs[0],
            ("windowSize".into(), Expr::Str("5min".into()))
        );
        assert_eq!(
            call(&e).kwargs[1],
            ("xFilesFactor".into(), Expr::Float(0.5))
        );
        assert_eq!(call(&p("constantLine(100)")).args, vec![Expr::Int(100)]);
        assert!(call(&p("f()")).args.is_empty());
        let e = p("seriesByTag('name=cpu','host=~web.*')");
        assert_eq!(call(&e).raw, "seriesByTag('name=cpu','host=~web.*')");
        // A number followed by path characters is a path.
        assert_eq!(call(&p("f(1.2.3)")).args[0], Expr::Path("1.2.3".into()));
    }

    #[test]
    fn nesting_pipes_templates() {
        let e = p("alias(sumSeries(scale(a.*, 2)), 'total')");
        assert_eq!(e.depth(), 3);
        let e = p("a.b.* | sumSeries() | alias('x')");
        let c = call(&e);
        assert_eq!(c.name, "alias");
        assert_eq!(call(&c.args[0]).name, "sumSeries");
        let e = p("template(hosts.$hostname.cpu, hostname='worker1')");
        match e {
            Expr::Template(t) => {
                assert_eq!(t.expr, Expr::Path("hosts.$hostname.cpu".into()));
                assert_eq!(
                    t.kwargs[0],
                    ("hostname".into(), Expr::Str("worker1".into()))
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = parse_target("sumSeries(a.b", 64).unwrap_err();
        assert_eq!(e.position, 13);
        assert!(
            e.to_string()
                .contains("expected ',' or ')' at character 13"),
            "{e}"
        );
        let e = parse_target("sumSeries(a.b))", 64).unwrap_err();
        assert_eq!(e.position, 14);
        let e = parse_target("f('abc)", 64).unwrap_err();
        assert_eq!(e.position, 2);
        let e = parse_target("f(x=1, a.b)", 64).unwrap_err();
        assert_eq!(e.position, 7);
        let e = parse_target("a.{b,c", 64).unwrap_err();
        assert!(e.expected.contains('}'), "{e}");
        let e = parse_target("", 64).unwrap_err();
        assert_eq!(e.position, 0);
        assert!(parse_target("f(f(f(a)))", 2).is_err());
        assert!(parse_target("a | b", 64).is_err());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;

    #[test]
    fn no_input_panics() {
        let alphabet: Vec<&str> = vec![
            "sumSeries",
            "(",
            ")",
            ",",
            "'",
            "\"",
            "a",
            ".",
            "*",
            "?",
            "[",
            "]",
            "{",
            "}",
            "=",
            "|",
            " ",
            "\\",
            "1",
            "-",
            "e",
            "2.5",
            "true",
            "None",
            "inf",
            "template",
            "$x",
            "é",
            "日",
            "🙂",
            "\t",
            "x=",
            "seriesByTag",
            "\n",
            "=~",
            ";",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..50_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 12) as usize;
            let target: String = (0..len)
                .map(|k| alphabet[(seed.rotate_left(k as u32 * 7) as usize) % alphabet.len()])
                .collect();
            if let Err(e) = parse_target(&target, 8) {
                // The message must point inside (or at the end of) the target.
                assert!(e.position <= target.chars().count(), "{target:?}: {e}");
                let _ = e.to_string();
            }
        }
        // Deep nesting stops at the limit instead of overflowing the stack.
        let deep = format!("{}a{}", "f(".repeat(10_000), ")".repeat(10_000));
        assert!(parse_target(&deep, 64).is_err());
    }
}
