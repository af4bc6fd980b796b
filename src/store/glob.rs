//! Graphite's path globs for one node of a metric path, as graphite-web's standard finder
//! matches directory entries: `{a,b}` alternatives (expanded innermost first, as its
//! `expand_braces`), then Python `fnmatch` on each alternative — `*` any run of characters,
//! `?` one character, `[abc]` / `[a-z]` / `[!abc]` one character of (or not of) a set; a
//! `[` without its `]` is a literal. Matching is case-sensitive, by Unicode character.

/// One node pattern, compiled.
#[derive(Debug, Clone)]
pub enum NodePattern {
    /// No wildcard at all: compare as a string (the index looks it up directly).
    Literal(String),
    /// `**`: any number of nodes (graphite-web's globstar).
    GlobStar,
    /// Some wildcard: any alternative may match.
    Glob(Vec<Vec<Token>>),
    /// A node whose `{…}` groups would expand to more than [`MAX_ALTERNATIVES`] alternatives
    /// (`{a,b}{a,b}…` doubles with every group), matched as one regular expression instead;
    /// `None` when even that is too large, which matches nothing.
    Regex(Option<regex::Regex>),
}

impl PartialEq for NodePattern {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (NodePattern::Literal(a), NodePattern::Literal(b)) => a == b,
            (NodePattern::GlobStar, NodePattern::GlobStar) => true,
            (NodePattern::Glob(a), NodePattern::Glob(b)) => a == b,
            (NodePattern::Regex(a), NodePattern::Regex(b)) => {
                a.as_ref().map(|r| r.as_str()) == b.as_ref().map(|r| r.as_str())
            }
            _ => false,
        }
    }
}

/// Most alternatives a node's `{…}` groups are expanded into (graphite-web has no limit and
/// would run out of memory on a pattern with many groups).
pub const MAX_ALTERNATIVES: usize = 1024;

/// One element of an fnmatch pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// A literal character.
    Char(char),
    /// `?`
    Any,
    /// `*`
    Star,
    /// `[...]`: (negated, ranges inclusive).
    Class(bool, Vec<(char, char)>),
}

/// Expands `{a,b}` groups as graphite-web's `expand_braces`: the first innermost group is
/// replaced by each of its alternatives, recursively; duplicates removed, order kept.
pub fn expand_braces(s: &str) -> Vec<String> {
    expand_braces_limited(s, usize::MAX).unwrap_or_default()
}

/// [`expand_braces`], giving up (`None`) once more than `limit` alternatives appear.
pub fn expand_braces_limited(s: &str, limit: usize) -> Option<Vec<String>> {
    let mut out = Vec::new();
    if !expand_into(s, &mut out, limit) {
        return None;
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|v| seen.insert(v.clone()));
    Some(out)
}

/// A node pattern as one anchored regular expression: `*` → `.*`, `?` → `.`, `[…]`/`[!…]`
/// classes, `{a,b}` → `(?:a|b)` (nested too), everything else literal.
fn to_regex(node: &str) -> Option<regex::Regex> {
    let chars: Vec<char> = node.chars().collect();
    let mut re = String::from("^(?s:");
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '{' => {
                depth += 1;
                re.push_str("(?:");
            }
            '}' if depth > 0 => {
                depth -= 1;
                re.push(')');
            }
            ',' if depth > 0 => re.push('|'),
            '[' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&c| c == ']')
                    .map(|p| p + i + 1);
                match close {
                    Some(j) if j > i + 1 => {
                        let body: String = chars[i + 1..j].iter().collect();
                        let (neg, body) = match body.strip_prefix('!') {
                            Some(b) => ("^", b.to_string()),
                            None => ("", body),
                        };
                        let escaped: String = body
                            .chars()
                            .map(|c| {
                                if matches!(c, '\\' | '[' | ']' | '^' | '&' | '~') {
                                    format!("\\{c}")
                                } else {
                                    c.to_string()
                                }
                            })
                            .collect();
                        re.push_str(&format!("[{neg}{escaped}]"));
                        i = j;
                    }
                    _ => re.push_str(&regex::escape("[")),
                }
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    for _ in 0..depth {
        re.push(')');
    }
    re.push_str(")$");
    regex::RegexBuilder::new(&re)
        .size_limit(1 << 20)
        .build()
        .ok()
}

/// Expands into `out`; `false` once `out` would exceed `limit`.
fn expand_into(s: &str, out: &mut Vec<String>, limit: usize) -> bool {
    // Find the first `{...}` with no brace inside.
    let bytes = s.as_bytes();
    let mut open = None;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'{' => open = Some(i),
            b'}' => {
                if let Some(o) = open {
                    let inner = &s[o + 1..i];
                    for alt in inner.split(',') {
                        let next = format!("{}{}{}", &s[..o], alt, &s[i + 1..]);
                        if !expand_into(&next, out, limit) {
                            return false;
                        }
                    }
                    return true;
                }
            }
            _ => {}
        }
    }
    if out.len() >= limit {
        return false;
    }
    out.push(s.to_string());
    true
}

/// Whether a node pattern has any wildcard (`*`, `?`, `[`, or a `{}` group).
pub fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '[', '{'])
}

fn compile_fnmatch(p: &str) -> Vec<Token> {
    let chars: Vec<char> = p.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                }
                i += 1;
            }
            '?' => {
                tokens.push(Token::Any);
                i += 1;
            }
            '[' => {
                // fnmatch: `]` right after `[` or `[!` is a member; no closing `]` => literal.
                let mut j = i + 1;
                if j < chars.len() && chars[j] == '!' {
                    j += 1;
                }
                if j < chars.len() && chars[j] == ']' {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    tokens.push(Token::Char('['));
                    i += 1;
                    continue;
                }
                let mut k = i + 1;
                let negated = chars[k] == '!';
                if negated {
                    k += 1;
                }
                let mut ranges = Vec::new();
                let body = &chars[k..j];
                let mut m = 0;
                while m < body.len() {
                    if m + 2 < body.len() && body[m + 1] == '-' {
                        ranges.push((body[m], body[m + 2]));
                        m += 3;
                    } else {
                        ranges.push((body[m], body[m]));
                        m += 1;
                    }
                }
                tokens.push(Token::Class(negated, ranges));
                i = j + 1;
            }
            c => {
                tokens.push(Token::Char(c));
                i += 1;
            }
        }
    }
    tokens
}

fn token_matches(t: &Token, c: char) -> bool {
    match t {
        Token::Char(x) => *x == c,
        Token::Any => true,
        Token::Class(neg, ranges) => ranges.iter().any(|&(a, b)| a <= c && c <= b) != *neg,
        Token::Star => true,
    }
}

/// fnmatch over characters with the classic single-backtrack algorithm: O(len × pattern).
fn fnmatch(tokens: &[Token], s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    let (mut ti, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < chars.len() {
        if ti < tokens.len() && tokens[ti] == Token::Star {
            star = Some((ti, si));
            ti += 1;
        } else if ti < tokens.len() && token_matches(&tokens[ti], chars[si]) {
            ti += 1;
            si += 1;
        } else if let Some((st, ss)) = star {
            ti = st + 1;
            si = ss + 1;
            star = Some((st, ss + 1));
        } else {
            return false;
        }
    }
    while ti < tokens.len() && tokens[ti] == Token::Star {
        ti += 1;
    }
    ti == tokens.len()
}

impl NodePattern {
    /// Compiles one node of a path expression (backslash escapes removed, as graphite-web's
    /// finder removes them).
    pub fn compile(node: &str) -> NodePattern {
        let node = node.replace('\\', "");
        if node == "**" {
            return NodePattern::GlobStar;
        }
        if !has_wildcard(&node) {
            return NodePattern::Literal(node);
        }
        let Some(alts) = expand_braces_limited(&node, MAX_ALTERNATIVES) else {
            return NodePattern::Regex(to_regex(&node));
        };
        if alts.len() == 1 && !has_wildcard(&alts[0]) {
            return NodePattern::Literal(alts.into_iter().next().unwrap_or_default());
        }
        NodePattern::Glob(alts.iter().map(|a| compile_fnmatch(a)).collect())
    }

    /// Whether `name` (one node) matches.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NodePattern::Literal(l) => l == name,
            NodePattern::GlobStar => true,
            NodePattern::Glob(alts) => alts.iter().any(|t| fnmatch(t, name)),
            NodePattern::Regex(re) => re.as_ref().is_some_and(|re| re.is_match(name)),
        }
    }

    /// The characters every name this matches starts with (the literal start common to all
    /// alternatives: `h1` for `h1*`, `web` for `{web1,web2}*`), so the index can skip to
    /// them; empty when there is none or for a regular expression.
    pub fn literal_prefix(&self) -> String {
        match self {
            NodePattern::Literal(l) => l.clone(),
            NodePattern::GlobStar | NodePattern::Regex(_) => String::new(),
            NodePattern::Glob(alts) => {
                let lead = |t: &Vec<Token>| -> Vec<char> {
                    t.iter()
                        .map_while(|tok| match tok {
                            Token::Char(c) => Some(*c),
                            _ => None,
                        })
                        .collect()
                };
                let mut iter = alts.iter();
                let Some(first) = iter.next() else {
                    return String::new();
                };
                let mut common = lead(first);
                for alt in iter {
                    let other = lead(alt);
                    let same = common
                        .iter()
                        .zip(&other)
                        .take_while(|(a, b)| a == b)
                        .count();
                    common.truncate(same);
                }
                common.into_iter().collect()
            }
        }
    }

    /// The literal alternatives when every alternative is wildcard-free (`{a,b}`), so the
    /// index can look them up directly instead of scanning.
    pub fn literal_alternatives(&self) -> Option<Vec<String>> {
        match self {
            NodePattern::Literal(l) => Some(vec![l.clone()]),
            NodePattern::Glob(alts) => alts
                .iter()
                .map(|t| {
                    t.iter()
                        .map(|tok| match tok {
                            Token::Char(c) => Some(*c),
                            _ => None,
                        })
                        .collect::<Option<String>>()
                })
                .collect(),
            NodePattern::GlobStar | NodePattern::Regex(_) => None,
        }
    }
}

/// Splits a path expression into nodes on every `.`, as graphite-web's standard finder does
/// (`pattern.split('.')`): a `{…}` or `[…]` holding a dot is cut in two and matches nothing,
/// as there.
pub fn split_nodes(pattern: &str) -> Vec<&str> {
    pattern.split('.').collect()
}

/// A whole path expression (`collectd.*.load.{short,mid}term`, `servers.**.cpu`), compiled
/// once and matched against metric or series names node by node, as the finder matches the
/// index; `**` spans any number of nodes (zero included). For callers that hold a name, not
/// the index (alert silences).
#[derive(Debug, Clone)]
pub struct PathGlob {
    nodes: Vec<NodePattern>,
}

impl PathGlob {
    /// Compiles `pattern` (never fails: a malformed class or brace is literal or matches
    /// nothing, as in the finder).
    pub fn compile(pattern: &str) -> PathGlob {
        PathGlob {
            nodes: split_nodes(pattern)
                .into_iter()
                .map(NodePattern::compile)
                .collect(),
        }
    }

    /// Whether `name` (dot-separated) matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let parts: Vec<&str> = name.split('.').collect();
        match_nodes(&self.nodes, &parts)
    }
}

fn match_nodes(patterns: &[NodePattern], parts: &[&str]) -> bool {
    match patterns.split_first() {
        None => parts.is_empty(),
        Some((NodePattern::GlobStar, rest)) => {
            (0..=parts.len()).any(|skip| match_nodes(rest, &parts[skip..]))
        }
        Some((p, rest)) => match parts.split_first() {
            Some((first, others)) => p.matches(first) && match_nodes(rest, others),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        NodePattern::compile(p).matches(s)
    }

    #[test]
    fn literal_prefixes() {
        let p = |s: &str| NodePattern::compile(s).literal_prefix();
        assert_eq!(p("h1*"), "h1");
        assert_eq!(p("{web1,web2}*"), "web");
        assert_eq!(p("{a,b}*"), "");
        assert_eq!(p("*x"), "");
        assert_eq!(p("ab[cd]e"), "ab");
        assert_eq!(p("x?"), "x");
        assert_eq!(p("**"), "");
        // Every name a pattern matches starts with its prefix.
        for (pat, names) in [
            ("h1*", ["h1", "h10", "h2"]),
            ("{ab,ac}?", ["abx", "acy", "bcz"]),
        ] {
            let c = NodePattern::compile(pat);
            for n in names {
                assert!(
                    !c.matches(n) || n.starts_with(&c.literal_prefix()),
                    "{pat} {n}"
                );
            }
        }
    }

    #[test]
    fn whole_paths_match_node_by_node() {
        let g = PathGlob::compile("web.*.cpu");
        assert!(g.matches("web.a.cpu"));
        assert!(!g.matches("web.a.b.cpu"));
        assert!(!g.matches("web.a"));
        let g = PathGlob::compile("web.**.cpu");
        assert!(g.matches("web.cpu") && g.matches("web.a.b.cpu"));
        assert!(PathGlob::compile("d.{a,b}").matches("d.b"));
        assert!(!PathGlob::compile("d.{a,b}").matches("d.c"));
    }

    #[test]
    fn fnmatch_rules() {
        assert!(m("*", "abc"));
        assert!(m("a*", "abc"));
        assert!(!m("a*", "bac"));
        assert!(m("*c", "abc"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("h[0-2]", "h1"));
        assert!(!m("h[0-2]", "h3"));
        assert!(m("h[!0-2]", "h3"));
        assert!(m("h[ab]x", "hbx"));
        assert!(m("a[", "a["));
        assert!(m("{cpu,mem}*", "memory"));
        assert!(m("x{a,b{c,d}}y", "xbdy"));
        assert!(!m("x{a,b{c,d}}y", "xby"));
        assert!(m("m{00,01}", "m01"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b", "xxaxxbxx"));
    }

    #[test]
    fn brace_expansion_order_and_literals() {
        assert_eq!(
            expand_braces("a{b,c}d{e,f}"),
            vec!["abde", "abdf", "acde", "acdf"]
        );
        assert_eq!(
            NodePattern::compile("{a,b}").literal_alternatives(),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(NodePattern::compile("a*").literal_alternatives(), None);
        assert_eq!(
            NodePattern::compile("plain"),
            NodePattern::Literal("plain".into())
        );
    }

    #[test]
    fn many_groups_are_matched_without_expanding_them() {
        // 2^30 alternatives if expanded; matched as a regular expression instead.
        let p = NodePattern::compile(&"{a,b}".repeat(30));
        assert!(matches!(p, NodePattern::Regex(Some(_))));
        assert!(p.matches(&"ab".repeat(15)));
        assert!(!p.matches(&"ab".repeat(14)));
        let p = NodePattern::compile(&format!("{}h[0-2]*", "{x,y}".repeat(12)));
        assert!(p.matches("xyxyxyxyxyxyh1zz"));
        assert!(!p.matches("xyxyxyxyxyxyh3"));
        let p = NodePattern::compile(&format!("{}[!q]", "{x,y}".repeat(12)));
        assert!(p.matches("xxxxxxxxxxxxa"));
        assert!(!p.matches("xxxxxxxxxxxxq"));
    }

    #[test]
    fn splits_on_every_dot() {
        assert_eq!(split_nodes("a.{b.c,d}.e"), vec!["a", "{b", "c,d}", "e"]);
        assert_eq!(split_nodes("a.[.].b"), vec!["a", "[", "]", "b"]);
        assert_eq!(split_nodes("a..b"), vec!["a", "", "b"]);
        assert_eq!(split_nodes("a"), vec!["a"]);
    }
}
