//! Alias and legend: functions that rename series (graphite-web's "Alias" group, and
//! `cactiStyle`/`substr`, which it files under "Special"), and the Python regular
//! expressions `aliasSub`/`aliasQuery` need.
//!
//! Names follow graphite-web 1.1.8 character for character: `aliasByNode` picks nodes of the
//! first path expression of a function-call name, `aliasSub` is Python's `re.sub`, legends
//! use Python's `%` formatting and glyph's unit prefixes. Python patterns are translated to
//! the `regex` crate's syntax ([`py_regex`]); what that crate cannot do (look-around,
//! backreferences, atomic groups, possessive quantifiers, conditionals) is refused with
//! `BadRequest` rather than approximated. Nothing here fetches by itself (except `aliasQuery`,
//! which evaluates the targets it builds, as graphite-web does) or writes.
//!
//! Where carbonhound knowingly differs from graphite-web 1.1.8: the regex features listed at
//! [`py_regex`] are refused (400) where Python would run them; after an empty match `re.sub`
//! looks for the next match one character on, where Python first tries a longer match at the
//! same place (only lazy or alternation patterns that can match empty tell the difference).

use super::common::bad;
use regex::{Captures, Regex, RegexBuilder};

use super::common::{
    agg_func, first_path_expression_checked, format_units, py_fixed, py_percent_format,
    py_slice_range, py_str_value, safe_last, safe_max, safe_min,
};
use crate::query::eval::{EvalContext, EvalError, Value};
use crate::query::pyfmt::repr_f64;
use crate::query::series::Series;
use crate::query::signature::{Args, FunctionDef, Param, ParamDefault, ParamType as T};

/// Compiles a Python `re` pattern (graphite-web's `aliasSub`, `aliasQuery`, `grep`, `exclude`
/// …) as the `regex` crate reads it: `\Z` becomes `\z`, `{,n}` becomes `{0,n}`, braces that
/// are not a quantifier and `[`/`&&`/`--`/`~~` inside a class become literals (as Python reads
/// them), `(?#…)` comments go, `\0`/`\ooo` octal escapes become `\x{…}`. Features the crate
/// lacks (look-ahead/behind, backreferences, atomic groups, possessive quantifiers,
/// conditionals, `\N{…}`) are a `BadRequest` naming the feature. Differences that remain:
/// `$` matches only at the very end (Python also matches before a final newline, which metric
/// names never have). Compilation is bounded in size.
pub fn py_regex(pattern: &str) -> Result<Regex, EvalError> {
    let translated = translate_pattern(pattern)
        .map_err(|m| bad(format!("regular expression '{pattern}': {m}")))?;
    RegexBuilder::new(&translated)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| {
            bad(format!(
                "regular expression '{pattern}' is not supported: {e}"
            ))
        })
}

fn unsupported(what: &str) -> String {
    format!("{what} is not supported (the regex engine has no backtracking)")
}

fn translate_pattern(p: &str) -> Result<String, String> {
    let c: Vec<char> = p.chars().collect();
    let n = c.len();
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    let mut class_first = 0usize;
    while i < n {
        let ch = c[i];
        if ch == '\\' {
            let Some(&d) = c.get(i + 1) else {
                return Err("bad escape (end of pattern)".into());
            };
            if d == '0'
                || (!in_class && ('1'..='9').contains(&d))
                || (in_class && ('1'..='7').contains(&d))
            {
                // Octal escape (\0, \0oo, or \ooo with three octal digits), else a backreference.
                let mut j = i + 1;
                let mut digits = String::new();
                while j < n && digits.len() < 3 && ('0'..='7').contains(&c[j]) {
                    digits.push(c[j]);
                    j += 1;
                }
                if d == '0' || digits.len() == 3 || in_class {
                    let v = u32::from_str_radix(&digits, 8)
                        .map_err(|_| "bad octal escape".to_string())?;
                    if v > 0o377 {
                        return Err(format!(
                            "octal escape value \\{digits} outside of range 0-0o377"
                        ));
                    }
                    out.push_str(&format!("\\x{{{v:x}}}"));
                    i = j;
                    continue;
                }
                return Err(unsupported("a backreference (\\N) in the pattern"));
            }
            match d {
                'Z' if !in_class => out.push_str("\\z"),
                'b' if in_class => out.push_str("\\x08"),
                'A' | 'b' | 'B' | 'Z' if in_class => {
                    return Err(format!("bad escape \\{d} in a character class"))
                }
                'A' | 'b' | 'B' | 'd' | 'D' | 's' | 'S' | 'w' | 'W' | 'a' | 'f' | 'n' | 'r'
                | 't' | 'v' | 'x' | 'u' | 'U' => {
                    out.push('\\');
                    out.push(d);
                }
                'N' => return Err(unsupported("\\N{…}")),
                d if d.is_ascii_alphabetic() => return Err(format!("bad escape \\{d}")),
                d => out.push_str(&regex::escape(&d.to_string())),
            }
            i += 2;
            continue;
        }
        if in_class {
            match ch {
                ']' if i > class_first => {
                    in_class = false;
                    out.push(']');
                }
                '[' => out.push_str("\\["),
                '&' | '-' | '~' if c.get(i + 1) == Some(&ch) => {
                    out.push(ch);
                    out.push('\\');
                    out.push(ch);
                    i += 1;
                }
                _ => out.push(ch),
            }
            i += 1;
            continue;
        }
        match ch {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if c.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if c.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
                class_first = i;
                continue;
            }
            '(' if c.get(i + 1) == Some(&'?') => {
                let rest: String = c[i + 2..].iter().take(3).collect();
                if rest.starts_with('=') || rest.starts_with('!') {
                    return Err(unsupported("look-ahead"));
                }
                if rest.starts_with("<=") || rest.starts_with("<!") {
                    return Err(unsupported("look-behind"));
                }
                if rest.starts_with("P=") {
                    return Err(unsupported("a named backreference"));
                }
                if rest.starts_with('>') {
                    return Err(unsupported("an atomic group"));
                }
                if rest.starts_with('(') {
                    return Err(unsupported("a conditional group"));
                }
                if rest.starts_with('#') {
                    // A comment: skip to its closing parenthesis.
                    match c[i..].iter().position(|&x| x == ')') {
                        Some(k) => {
                            i += k + 1;
                            continue;
                        }
                        None => return Err("missing ), unterminated comment".into()),
                    }
                }
                if rest.starts_with("P<") || rest.starts_with(':') {
                    out.push_str("(?");
                    i += 2;
                    continue;
                }
                if rest.starts_with('<') {
                    return Err("unknown extension ?<".into());
                }
                // Inline flags (?aiLmsux-imsx) or (?flags:…): keep i, m, s, x; u is the default.
                let mut j = i + 2;
                let mut flags = String::new();
                while j < n && "aiLmsux-".contains(c[j]) {
                    match c[j] {
                        'a' | 'L' => return Err(unsupported("the ASCII/locale flag")),
                        'u' => {}
                        f => flags.push(f),
                    }
                    j += 1;
                }
                if j < n && (c[j] == ')' || c[j] == ':') {
                    out.push_str("(?");
                    out.push_str(&flags);
                    out.push(c[j]);
                    i = j + 1;
                    continue;
                }
                return Err(format!(
                    "unknown extension ?{}",
                    c.get(i + 2).copied().unwrap_or(' ')
                ));
            }
            '{' => {
                // A quantifier only when it reads {m}, {m,}, {,n} or {m,n}; otherwise a literal.
                let mut j = i + 1;
                let lo_start = j;
                while j < n && c[j].is_ascii_digit() {
                    j += 1;
                }
                let lo: String = c[lo_start..j].iter().collect();
                let mut hi: Option<String> = None;
                if j < n && c[j] == ',' {
                    j += 1;
                    let hs = j;
                    while j < n && c[j].is_ascii_digit() {
                        j += 1;
                    }
                    hi = Some(c[hs..j].iter().collect());
                }
                if j < n && c[j] == '}' && !(lo.is_empty() && hi.is_none()) {
                    let lo = if lo.is_empty() { "0".to_string() } else { lo };
                    match hi {
                        None => out.push_str(&format!("{{{lo}}}")),
                        Some(h) => out.push_str(&format!("{{{lo},{h}}}")),
                    }
                    i = j + 1;
                    if c.get(i) == Some(&'+') {
                        return Err(unsupported("a possessive quantifier"));
                    }
                } else {
                    out.push_str("\\{");
                    i += 1;
                }
                continue;
            }
            '}' => out.push_str("\\}"),
            '*' | '+' | '?' => {
                out.push(ch);
                if c.get(i + 1) == Some(&'+') {
                    return Err(unsupported("a possessive quantifier"));
                }
            }
            _ => out.push(ch),
        }
        i += 1;
    }
    if in_class {
        return Err("unterminated character set".into());
    }
    Ok(out)
}

/// One piece of a Python `re.sub` replacement template.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Group(usize),
}

/// Parses a Python replacement template (`\1`, `\g<1>`, `\g<name>`, `\n` and the other
/// escapes, octal `\0`/`\ooo`) against `re`'s groups, with Python's errors (unknown group,
/// bad escape of a letter).
fn parse_template(template: &str, re: &Regex) -> Result<Vec<Piece>, EvalError> {
    let c: Vec<char> = template.chars().collect();
    let groups = re.captures_len();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut lit = String::new();
    let group = |idx: usize, lit: &mut String, pieces: &mut Vec<Piece>| -> Result<(), EvalError> {
        if idx >= groups {
            return Err(bad(format!("invalid group reference {idx}")));
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(lit)));
        }
        pieces.push(Piece::Group(idx));
        Ok(())
    };
    let mut i = 0;
    while i < c.len() {
        if c[i] != '\\' {
            lit.push(c[i]);
            i += 1;
            continue;
        }
        let Some(&d) = c.get(i + 1) else {
            return Err(bad("bad escape (end of pattern) in the replacement"));
        };
        i += 2;
        match d {
            'g' => {
                if c.get(i) != Some(&'<') {
                    return Err(bad("missing < in \\g<…>"));
                }
                let Some(close) = c[i + 1..].iter().position(|&x| x == '>') else {
                    return Err(bad("missing >, unterminated name in \\g<…>"));
                };
                let name: String = c[i + 1..i + 1 + close].iter().collect();
                i += close + 2;
                if name.is_empty() {
                    return Err(bad("missing group name in \\g<>"));
                }
                let idx = if name.chars().all(|x| x.is_ascii_digit()) {
                    name.parse::<usize>()
                        .map_err(|_| bad(format!("invalid group reference {name}")))?
                } else {
                    re.capture_names()
                        .position(|n| n == Some(name.as_str()))
                        .ok_or_else(|| bad(format!("unknown group name '{name}'")))?
                };
                group(idx, &mut lit, &mut pieces)?;
            }
            '0' => {
                let mut digits = String::from("0");
                while digits.len() < 3 && c.get(i).is_some_and(|x| ('0'..='7').contains(x)) {
                    digits.push(c[i]);
                    i += 1;
                }
                let v = u32::from_str_radix(&digits, 8).unwrap_or(0) & 0xff;
                lit.push(char::from_u32(v).unwrap_or('\0'));
            }
            '1'..='9' => {
                let mut digits = d.to_string();
                let mut octal = false;
                if let Some(&e) = c.get(i).filter(|x| x.is_ascii_digit()) {
                    digits.push(e);
                    i += 1;
                    if ('0'..='7').contains(&d)
                        && ('0'..='7').contains(&e)
                        && c.get(i).is_some_and(|x| ('0'..='7').contains(x))
                    {
                        digits.push(c[i]);
                        i += 1;
                        octal = true;
                    }
                }
                if octal {
                    let v = u32::from_str_radix(&digits, 8).unwrap_or(0);
                    if v > 0o377 {
                        return Err(bad(format!(
                            "octal escape value \\{digits} outside of range 0-0o377"
                        )));
                    }
                    lit.push(char::from_u32(v).unwrap_or('\0'));
                } else {
                    group(digits.parse().unwrap_or(usize::MAX), &mut lit, &mut pieces)?;
                }
            }
            'a' => lit.push('\x07'),
            'b' => lit.push('\x08'),
            'f' => lit.push('\x0c'),
            'n' => lit.push('\n'),
            'r' => lit.push('\r'),
            't' => lit.push('\t'),
            'v' => lit.push('\x0b'),
            '\\' => lit.push('\\'),
            d if d.is_ascii_alphabetic() => {
                return Err(bad(format!("bad escape \\{d} in the replacement")))
            }
            d => {
                lit.push('\\');
                lit.push(d);
            }
        }
    }
    if !lit.is_empty() {
        pieces.push(Piece::Literal(lit));
    }
    Ok(pieces)
}

/// A compiled Python `re.sub(pattern, replacement, …)`.
pub struct PySub {
    re: Regex,
    pieces: Vec<Piece>,
}

impl PySub {
    /// Compiles the pattern ([`py_regex`]) and the replacement template.
    pub fn new(pattern: &str, replacement: &str) -> Result<PySub, EvalError> {
        let re = py_regex(pattern)?;
        let pieces = parse_template(replacement, &re)?;
        Ok(PySub { re, pieces })
    }

    fn expand(&self, caps: &Captures<'_>, out: &mut String) {
        for p in &self.pieces {
            match p {
                Piece::Literal(s) => out.push_str(s),
                // An unmatched group is replaced by nothing (Python 3.5+).
                Piece::Group(g) => out.push_str(caps.get(*g).map_or("", |m| m.as_str())),
            }
        }
    }

    /// Python 3.7+ `re.sub` over `text`: every non-overlapping match replaced; an empty match
    /// right after a previous match is replaced too, but never twice at one position.
    pub fn replace_all(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        let mut pos = 0;
        let mut must_advance = false;
        while pos <= text.len() {
            let Some(mut caps) = self.re.captures_at(text, pos) else {
                break;
            };
            let mut m = caps.get(0).map_or(pos..pos, |m| m.range());
            if must_advance && m.start == pos && m.end == pos {
                // Python would look for a longer match here first; the next position is what
                // nearly every pattern gives.
                let Some(ch) = text[pos..].chars().next() else {
                    break;
                };
                let next = pos + ch.len_utf8();
                match self.re.captures_at(text, next) {
                    Some(c) => {
                        caps = c;
                        m = caps.get(0).map_or(next..next, |m| m.range());
                    }
                    None => break,
                }
            }
            out.push_str(&text[last..m.start]);
            self.expand(&caps, &mut out);
            last = m.end;
            must_advance = m.start == m.end;
            pos = m.end;
        }
        out.push_str(&text[last..]);
        out
    }
}

fn alias(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let name = args.string("newName")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = name.clone();
    }
    Ok(list)
}

const ALIAS: FunctionDef = FunctionDef {
    name: "alias",
    group: "Alias",
    description: "\
        Takes one metric or a wildcard seriesList and a string in quotes.\n\
        Prints the string instead of the metric name in the legend.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=alias(Sales.widgets.largeBlue,\"Large Blue Widgets\")",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("newName", T::String),
    ],
    aggregator: false,
    imp: alias,
};

fn alias_sub(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let sub = PySub::new(&args.string("search")?, &args.string("replace")?)?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = sub.replace_all(&s.name);
    }
    Ok(list)
}

const ALIAS_SUB: FunctionDef = FunctionDef {
    name: "aliasSub",
    group: "Alias",
    description: "\
        Runs series names through a regex search/replace.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=aliasSub(ip.*TCP*,\"^.*TCP(\\d+)\",\"\\1\")",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("search", T::String),
        Param::req("replace", T::String),
    ],
    aggregator: false,
    imp: alias_sub,
};

fn alias_query(ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let sub = PySub::new(&args.string("search")?, &args.string("replace")?)?;
    let new_name = args.string("newName")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        let query = sub.replace_all(&s.name);
        let expr =
            crate::query::parse::parse_target(&query, ctx.limits.max_depth).map_err(|e| {
                bad(format!(
                    "aliasQuery built '{query}', which does not parse: {e}"
                ))
            })?;
        let found = ctx.eval_target(&expr)?;
        let first = found
            .first()
            .ok_or_else(|| bad(format!("No series found with query: {query}")))?;
        let current = safe_last(&first.consolidated())
            .ok_or_else(|| bad(format!("Cannot get last value of series: {}", first.name)))?;
        s.name = py_percent_format(&new_name, current)?;
    }
    Ok(list)
}

const ALIAS_QUERY: FunctionDef = FunctionDef {
    name: "aliasQuery",
    group: "Alias",
    description: "\
        Performs a query to alias the metrics in seriesList.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=aliasQuery(channel.power.*,\"channel\\.power\\.([0-9]+)\",\"\
        channel.frequency.\\1\", \"Channel %d MHz\")\n\
        \n\
        The series in seriesList will be aliased by first translating the series names using\n\
        the search & replace parameters, then using the last value of the resulting series\n\
        to construct the alias using sprintf-style syntax.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("search", T::String),
        Param::req("replace", T::String),
        Param::req("newName", T::String),
    ],
    aggregator: false,
    imp: alias_query,
};

/// One `nodeOrTag` argument: a node index or a tag name.
pub enum NodeOrTag {
    /// A node of the dotted name (negative counts from the end).
    Node(i64),
    /// A tag name.
    Tag(String),
}

fn nodes_of(args: &Args<'_>, param: &str) -> Result<Vec<NodeOrTag>, EvalError> {
    args.values(param)?
        .into_iter()
        .map(|v| match v {
            Value::Int(i) => Ok(NodeOrTag::Node(i)),
            // graphite-web indexes a list with it: a float fails there.
            Value::Float(f) if f.fract() == 0.0 => Err(bad(format!(
                "list indices must be integers, not float ({})",
                repr_f64(f)
            ))),
            other => Ok(NodeOrTag::Tag(py_str_value(&other))),
        })
        .collect()
}

/// graphite-web's `aggKey(series, nodes)`: the chosen nodes of the series' name (of the first
/// path expression when the name is a function call, tags stripped) or its tag values, joined
/// by dots; a missing node or tag gives an empty part.
pub fn agg_key(s: &Series, nodes: &[NodeOrTag]) -> Result<String, EvalError> {
    let path = if s.name.ends_with(')') {
        first_path_expression_checked(&s.name)?
    } else {
        None
    };
    let source = path.as_deref().unwrap_or(&s.name);
    let base = source.split(';').next().unwrap_or("");
    let parts: Vec<&str> = base.split('.').collect();
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        out.push(match n {
            NodeOrTag::Node(i) => match super::common::py_index_of(parts.len(), *i) {
                Some(j) => parts[j].to_string(),
                None => s.tags.get(&i.to_string()).cloned().unwrap_or_default(),
            },
            NodeOrTag::Tag(t) => s.tags.get(t).cloned().unwrap_or_default(),
        });
    }
    Ok(out.join("."))
}

fn alias_by_node(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let nodes = nodes_of(args, "nodes")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = agg_key(s, &nodes)?;
    }
    Ok(list)
}

const ALIAS_BY_NODE: FunctionDef = FunctionDef {
    name: "aliasByNode",
    group: "Alias",
    description: "\
        Takes a seriesList and applies an alias derived from one or more \"node\"\n\
        portion/s of the target name or tags. Node indices are 0 indexed.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=aliasByNode(ganglia.*.cpu.load5,1)\n\
        \n\
        Each node may be an integer referencing a node in the series name or a string identifying \
        a tag.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=seriesByTag(\"name=~cpu.load.*\", \"server=~server[1-9]+\", \
        \"datacenter=dc1\")|aliasByNode(\"datacenter\", \"server\", 1)\n\
        \n  # will produce output series like\
        \n  # dc1.server1.load5, dc1.server2.load5, dc1.server1.load10, dc1.server2.load10",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("nodes", T::NodeOrTag).many(),
    ],
    aggregator: false,
    imp: alias_by_node,
};

fn alias_by_tags(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let nodes = nodes_of(args, "tags")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = agg_key(s, &nodes)?;
    }
    Ok(list)
}

const ALIAS_BY_TAGS: FunctionDef = FunctionDef {
    name: "aliasByTags",
    group: "Alias",
    description: "\
        Takes a seriesList and applies an alias derived from one or more tags and/or nodes\n\
        \n\
        .. code-block:: none\n\
        \n  &target=seriesByTag(\"name=cpu\")|aliasByTags(\"server\",\"name\")\n\
        \n\
        This is an alias for :py:func:`aliasByNode <aliasByNode>`.",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::req("tags", T::NodeOrTag).many(),
    ],
    aggregator: false,
    imp: alias_by_tags,
};

/// graphite-web's `substr(series, start, stop)` naming: the dot-separated nodes `start:stop`
/// (Python slice; `stop` 0 means to the end) of the innermost argument text, cut at its first
/// comma.
fn substr_name(name: &str, start: i64, stop: i64) -> String {
    let left = name.rfind('(').map_or(0, |i| i + 1);
    let right = name.find(')').unwrap_or(name.len());
    let clean = if right > left { &name[left..right] } else { "" };
    let parts: Vec<&str> = clean.split('.').collect();
    let range = py_slice_range(
        parts.len(),
        Some(start),
        if stop == 0 { None } else { Some(stop) },
    );
    let joined = parts[range].join(".");
    match joined.find(',') {
        Some(i) => joined[..i].to_string(),
        None => joined,
    }
}

fn substr(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let start = args.int("start")?;
    let stop = args.int("stop")?;
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = substr_name(&s.name, start, stop);
    }
    Ok(list)
}

const SUBSTR: FunctionDef = FunctionDef {
    name: "substr",
    group: "Special",
    description: "\
        Takes one metric or a wildcard seriesList followed by 1 or 2 integers.  Assume that the\n\
        metric name is a list or array, with each element separated by dots.  Prints\n\
        n - length elements of the array (if only one integer n is passed) or n - m\n\
        elements of the array (if two integers n and m are passed).  The list starts\n\
        with element 0 and ends with element (length - 1).\n\
        \n\
        Example:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=substr(carbon.agents.hostname.avgUpdateTime,2,4)\n\
        \n\
        The label would be printed as \"hostname.avgUpdateTime\".",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::def("start", T::Node, ParamDefault::Int(0)),
        Param::def("stop", T::Node, ParamDefault::Int(0)),
    ],
    aggregator: false,
    imp: substr,
};

fn alias_by_metric(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut list = args.series_list("seriesList")?;
    for s in &mut list {
        s.name = substr_name(&s.name, -1, 0);
    }
    Ok(list)
}

const ALIAS_BY_METRIC: FunctionDef = FunctionDef {
    name: "aliasByMetric",
    group: "Alias",
    description: "\
        Takes a seriesList and applies an alias derived from the base metric name.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=aliasByMetric(carbon.agents.graphite.creates)",
    params: &[Param::req("seriesList", T::SeriesList)],
    aggregator: false,
    imp: alias_by_metric,
};

/// Python's `str()` of an aggregation result: `None`, an int for `count`, else a float repr.
fn agg_str(v: Option<f64>, is_int: bool) -> String {
    match v {
        None => "None".into(),
        Some(x) if is_int => format!("{}", x as i64),
        Some(x) => repr_f64(x),
    }
}

/// Left-justifies to `width` characters (Python's `%-Ns`).
fn ljust(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n >= width {
        s.to_string()
    } else {
        format!("{s}{}", " ".repeat(width - n))
    }
}

fn legend_value(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let mut types: Vec<String> = args
        .values("valuesTypes")?
        .iter()
        .map(py_str_value)
        .collect();
    let Some(last) = types.last() else {
        return Err(bad(
            "tuple index out of range (legendValue needs a value type)",
        ));
    };
    let system = if last == "si" || last == "binary" {
        types.pop()
    } else {
        None
    };
    let mut list = args.series_list("seriesList")?;
    for value_type in &types {
        let func = agg_func(value_type).ok();
        for s in &mut list {
            let vals = s.consolidated().into_owned();
            if func.is_some() && value_type == "multiply" && vals.is_empty() {
                return Err(bad("reduce() of empty iterable with no initial value (multiply of an empty series)"));
            }
            // An unknown (deprecated `…Series`) name shows as `(?)`, as graphite-web's.
            let value: Result<Option<f64>, ()> = func.map(|f| f(&vals)).ok_or(());
            let is_int = value_type == "count";
            match &system {
                None => {
                    let text = match value {
                        Ok(v) => agg_str(v, is_int),
                        Err(()) => "(?)".into(),
                    };
                    s.name = format!("{} ({}: {})", s.name, value_type, text);
                }
                Some(sys) => {
                    let formatted = match value {
                        Err(()) => "(?)".to_string(),
                        Ok(None) => "None".to_string(),
                        Ok(Some(v)) => {
                            let (v2, prefix) = format_units(v, sys, None);
                            format!("{}{}", py_fixed(v2, 2), prefix)
                        }
                    };
                    s.name = format!(
                        "{}{}{}",
                        ljust(&s.name, 20),
                        ljust(value_type, 5),
                        ljust(&formatted, 10)
                    );
                }
            }
        }
    }
    Ok(list)
}

const LEGEND_VALUE: FunctionDef = FunctionDef {
    name: "legendValue",
    group: "Alias",
    description: "\
        Takes one metric or a wildcard seriesList and a string in quotes.\n\
        Appends a value to the metric name in the legend.  Currently one or several of: `last`, \
        `avg`,\n\
        `total`, `min`, `max`.\n\
        The last argument can be `si` (default) or `binary`, in that case values will be formatted \
        in the\n\
        corresponding system.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=legendValue(Sales.widgets.largeBlue, 'avg', 'max', 'si')",
    params: &[
        Param::req("seriesList", T::SeriesList),
        // graphite-web's Param says `valuesTypes`, its Python argument `*valueTypes`.
        Param::opt("valuesTypes", T::String)
            .many()
            .python_name("valueTypes")
            .options(&[
                "average",
                "avg_zero",
                "median",
                "sum",
                "min",
                "max",
                "diff",
                "stddev",
                "count",
                "range",
                "multiply",
                "last",
                "rangeOf",
                "avg",
                "total",
                "current",
                "averageSeries",
                "avg_zeroSeries",
                "medianSeries",
                "sumSeries",
                "minSeries",
                "maxSeries",
                "diffSeries",
                "stddevSeries",
                "countSeries",
                "rangeSeries",
                "multiplySeries",
                "lastSeries",
                "rangeOfSeries",
                "avgSeries",
                "totalSeries",
                "currentSeries",
                "si",
                "binary",
            ]),
    ],
    aggregator: false,
    imp: legend_value,
};

fn cacti_style(_ctx: &EvalContext<'_>, args: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let system = args.opt_str("system")?.filter(|s| !s.is_empty());
    let units = args.opt_str("units")?.filter(|s| !s.is_empty());
    let mut list = args.series_list("seriesList")?;
    if list.is_empty() {
        return Ok(list);
    }
    let fmt = |x: f64| -> String {
        match (&system, &units) {
            (Some(sys), Some(u)) => {
                let (v, p) = format_units(x, sys, Some(u));
                format!("{} {}", py_fixed(v, 2), p)
            }
            (Some(sys), None) => {
                let (v, p) = format_units(x, sys, None);
                format!("{}{}", py_fixed(v, 2), p)
            }
            (None, Some(u)) => format!("{} {}", py_fixed(x, 2), u),
            (None, None) => py_fixed(x, 2),
        }
    };
    // Column widths from int(value or 3), as graphite-web measures them (int() of inf or nan
    // fails there).
    let width_of = |v: Option<f64>| -> Result<usize, EvalError> {
        let x = match v {
            Some(x) if !x.is_finite() => {
                return Err(bad(format!(
                    "cannot convert float {} to integer",
                    repr_f64(x)
                )))
            }
            Some(x) if x != 0.0 => x.trunc(),
            _ => 3.0,
        };
        Ok(fmt(x).chars().count())
    };
    // (last, max, min) of each series.
    type Stats = (Option<f64>, Option<f64>, Option<f64>);
    let stats: Vec<Stats> = list
        .iter()
        .map(|s| {
            let v = s.consolidated();
            (safe_last(&v), safe_max(&v), safe_min(&v))
        })
        .collect();
    let widest = |pick: fn(&Stats) -> Option<f64>| -> Result<usize, EvalError> {
        let mut w = 0;
        for t in &stats {
            w = w.max(width_of(pick(t))?);
        }
        Ok(w + 3)
    };
    let name_len = list
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    let last_len = widest(|t| t.0)?;
    let max_len = widest(|t| t.1)?;
    let min_len = widest(|t| t.2)?;
    let show = |v: Option<f64>| v.map(&fmt).unwrap_or_else(|| "nan".into());
    for (s, (last, max, min)) in list.iter_mut().zip(stats) {
        s.name = format!(
            "{} Current:{} Max:{} Min:{} ",
            ljust(&s.name, name_len),
            ljust(&show(last), last_len),
            ljust(&show(max), max_len),
            ljust(&show(min), min_len)
        );
    }
    Ok(list)
}

const CACTI_STYLE: FunctionDef = FunctionDef {
    name: "cactiStyle",
    group: "Special",
    description: "\
        Takes a series list and modifies the aliases to provide column aligned\n\
        output with Current, Max, and Min values in the style of cacti. Optionally\n\
        takes a \"system\" value to apply unit formatting in the same style as the\n\
        Y-axis, or a \"unit\" string to append an arbitrary unit suffix.\n\
        \n\
        .. code-block:: none\n\
        \n  &target=cactiStyle(ganglia.*.net.bytes_out,\"si\")\
        \n  &target=cactiStyle(ganglia.*.net.bytes_out,\"si\",\"b\")\n\
        \n\
        A possible value for ``system`` is ``si``, which would express your values in\n\
        multiples of a thousand. A second option is to use ``binary`` which will\n\
        instead express your values in multiples of 1024 (useful for network devices).\n\
        \n\
        Column alignment of the Current, Max, Min values works under two conditions:\n\
        you use a monospace font such as terminus and use a single cactiStyle call, as\n\
        separate cactiStyle calls are not aware of each other. In case you have\n\
        different targets for which you would like to have cactiStyle to line up, you\n\
        can use ``group()`` to combine them before applying cactiStyle, such as:\n\
        \n\
        .. code-block:: none\n\
        \n  &target=cactiStyle(group(metricA,metricB))",
    params: &[
        Param::req("seriesList", T::SeriesList),
        Param::opt("system", T::String).options(&["si", "binary"]),
        Param::opt("units", T::String),
    ],
    aggregator: false,
    imp: cacti_style,
};

/// The Alias family (and `cactiStyle`/`substr`, which graphite-web files under "Special").
pub const FUNCTIONS: &[FunctionDef] = &[
    ALIAS,
    ALIAS_BY_NODE,
    ALIAS_BY_METRIC,
    ALIAS_SUB,
    ALIAS_QUERY,
    ALIAS_BY_TAGS,
    LEGEND_VALUE,
    CACTI_STYLE,
    SUBSTR,
];

#[cfg(test)]
mod tests {
    use super::super::testing::eval;
    use super::*;

    fn sub(p: &str, r: &str, text: &str) -> Result<String, EvalError> {
        Ok(PySub::new(p, r)?.replace_all(text))
    }

    #[test]
    fn python_re_sub_semantics() {
        // Expected strings are CPython 3.11's re.sub on the same arguments.
        assert_eq!(sub("x*", "-", "abxd").unwrap(), "-a-b--d-");
        assert_eq!(
            sub("(^.*$)", r"\1 A", "ref.gauge.a").unwrap(),
            "ref.gauge.a A"
        );
        assert_eq!(
            sub(r"(\w+)\.(?P<last>\w+)\Z", r"\g<last>:\2:\g<1>", "a.bc.de").unwrap(),
            "a.de:de:bc"
        );
        assert_eq!(sub("[[]", "L", "a[b").unwrap(), "aLb");
        assert_eq!(sub("a{,2}", "X", "caaat").unwrap(), "XcXXXtX");
        assert_eq!(sub("a{x", "X", "ba{xc").unwrap(), "bXc");
        assert_eq!(sub("(?#comment)b", "X", "abc").unwrap(), "aXc");
        assert_eq!(sub("(a)|b", r"[\1]", "ab").unwrap(), "[a][]");
        assert_eq!(sub("", "-", "ab").unwrap(), "-a-b-");
        assert_eq!(sub(r"\x41\101", "_", "zAAz").unwrap(), "z_z");
    }

    #[test]
    fn unsupported_regex_features_are_bad_requests() {
        for p in [
            r"(?=a)",
            r"(?!a)",
            r"(?<=a)b",
            r"(?<!a)b",
            r"(a)\1",
            r"(?P<n>a)(?P=n)",
            r"(?>a)",
            r"a*+",
            r"(a)?(?(1)b|c)",
            r"\N{DIGIT ONE}",
            "[a",
            r"\q",
        ] {
            assert!(matches!(py_regex(p), Err(EvalError::BadRequest(_))), "{p}");
        }
        assert!(matches!(
            PySub::new("a", r"\9"),
            Err(EvalError::BadRequest(_))
        ));
        assert!(matches!(
            PySub::new("a", r"\g<nope>"),
            Err(EvalError::BadRequest(_))
        ));
        assert!(matches!(
            PySub::new("a", "\\"),
            Err(EvalError::BadRequest(_))
        ));
    }

    #[test]
    fn grafana_alias_sub_wrapping_and_renames() {
        let t0 = 1_700_000_000 - 100;
        let pts = [("a.b.c", t0 + 10, 1.0), ("a.b.d", t0 + 10, 2.0)];
        let s = eval(&pts, r#"aliasSub(a.b.c, "(^.*$)", "\1 A")"#, t0, t0 + 60).unwrap();
        assert_eq!(s[0].name, "a.b.c A");
        let s = eval(&pts, "alias(a.*.*, 'load')", t0, t0 + 60).unwrap();
        assert_eq!(s[0].name, "load");
        let s = eval(&pts, "aliasByNode(a.b.*, 2, 0)", t0, t0 + 60).unwrap();
        assert_eq!(
            s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["c.a", "d.a"]
        );
        let s = eval(&pts, "aliasByMetric(keepLastValue(a.b.c))", t0, t0 + 60).unwrap();
        assert_eq!(s[0].name, "c");
        assert!(matches!(
            eval(&pts, "aliasSub(a.b.c, '(?=c)', 'x')", t0, t0 + 60),
            Err(EvalError::BadRequest(_))
        ));
        assert!(matches!(
            eval(&pts, "legendValue(a.b.c)", t0, t0 + 60),
            Err(EvalError::BadRequest(_))
        ));
        assert!(eval(&[], "cactiStyle(nothing.*)", t0, t0 + 60)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn substr_slices_like_python() {
        assert_eq!(substr_name("a.b.c.d", 1, 3), "b.c");
        assert_eq!(substr_name("scale(a.b.c,2)", -1, 0), "c");
        assert_eq!(substr_name("x)(", 0, 0), "");
        assert_eq!(substr_name("a.b", 9, -9), "");
    }
}
