//! Graphite's path globs for one node of a metric path, as graphite-web's standard finder
//! matches directory entries: `{a,b}` alternatives (expanded innermost first, as its
//! `expand_braces`), then Python `fnmatch` on each alternative — `*` any run of characters,
//! `?` one character, `[abc]` / `[a-z]` / `[!abc]` one character of (or not of) a set; a
//! `[` without its `]` is a literal. Matching is case-sensitive, by Unicode character.

/// One node pattern, compiled.
#[derive(Debug, Clone, PartialEq)]
pub enum NodePattern {
    /// No wildcard at all: compare as a string (the index looks it up directly).
    Literal(String),
    /// `**`: any number of nodes (graphite-web's globstar).
    GlobStar,
    /// Some wildcard: any alternative may match.
    Glob(Vec<Vec<Token>>),
}

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
    let mut out = Vec::new();
    expand_into(s, &mut out);
    let mut seen = std::collections::HashSet::new();
    out.retain(|v| seen.insert(v.clone()));
    out
}

fn expand_into(s: &str, out: &mut Vec<String>) {
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
                        expand_into(&next, out);
                    }
                    return;
                }
            }
            _ => {}
        }
    }
    out.push(s.to_string());
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
        let alts = expand_braces(&node);
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
            NodePattern::GlobStar => None,
        }
    }
}

/// Splits a path expression into nodes on `.` that are outside `{}` and `[]`, so
/// `a.{b.c,d}.e` keeps its group whole.
pub fn split_nodes(pattern: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth_brace = 0i32;
    let mut in_class = false;
    let mut start = 0;
    let bytes = pattern.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'{' if !in_class => depth_brace += 1,
            b'}' if !in_class && depth_brace > 0 => depth_brace -= 1,
            b'[' => in_class = true,
            b']' => in_class = false,
            b'.' if depth_brace == 0 && !in_class => {
                out.push(&pattern[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&pattern[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        NodePattern::compile(p).matches(s)
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
    fn splits_outside_groups() {
        assert_eq!(split_nodes("a.{b.c,d}.e"), vec!["a", "{b.c,d}", "e"]);
        assert_eq!(split_nodes("a.[.].b"), vec!["a", "[.]", "b"]);
        assert_eq!(split_nodes("a"), vec!["a"]);
    }
}
