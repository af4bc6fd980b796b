//! Event tags as graphite-web keeps them through django-tagging: the raw tag string stored
//! with each event, the tag names django-tagging's `parse_tag_input` makes of it (what tag
//! queries match), and the three ways `find_events` matches a query (`with_all`, `with_any`,
//! `with_intersection` plus the views' positive-match filter).
//!
//! Pure functions over strings; no storage here.

use std::collections::BTreeSet;

use crate::python::{split as py_split, strip as py_strip};

/// django-tagging's `split_strip`: `input` split on `delimiter`, each piece stripped, empty
/// pieces dropped.
fn split_strip(input: &str, delimiter: char) -> Vec<String> {
    input
        .split(delimiter)
        .map(py_strip)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// django-tagging's `parse_tag_input`: the sorted, unique tag names of a tag string. Words
/// are separated by spaces, or by commas when there is an unquoted comma; double quotes
/// group a name that may hold commas and spaces: `a,b c` → `a`, `b c`; `"x y" z` → `x y`, `z`.
pub fn parse_tag_input(input: &str) -> Vec<String> {
    if input.is_empty() {
        return Vec::new();
    }
    let mut words: Vec<String> = Vec::new();
    if !input.contains(',') && !input.contains('"') {
        words = split_strip(input, ' ');
    } else {
        let mut buffer = String::new();
        let mut to_be_split: Vec<String> = Vec::new();
        let mut saw_loose_comma = false;
        let mut open_quote = false;
        let mut chars = input.chars();
        'outer: while let Some(c) = chars.next() {
            if c == '"' {
                if !buffer.is_empty() {
                    to_be_split.push(std::mem::take(&mut buffer));
                }
                open_quote = true;
                loop {
                    match chars.next() {
                        None => break 'outer,
                        Some('"') => break,
                        Some(c) => buffer.push(c),
                    }
                }
                if !buffer.is_empty() {
                    let word = py_strip(&buffer);
                    if !word.is_empty() {
                        words.push(word.to_string());
                    }
                    buffer.clear();
                }
                open_quote = false;
            } else {
                if !saw_loose_comma && c == ',' {
                    saw_loose_comma = true;
                }
                buffer.push(c);
            }
        }
        // An unclosed quote: its text counts as unquoted.
        if !buffer.is_empty() {
            if open_quote && buffer.contains(',') {
                saw_loose_comma = true;
            }
            to_be_split.push(buffer);
        }
        let delimiter = if saw_loose_comma { ',' } else { ' ' };
        for chunk in &to_be_split {
            words.extend(split_strip(chunk, delimiter));
        }
    }
    let unique: BTreeSet<String> = words.into_iter().collect();
    unique.into_iter().collect()
}

/// How the tags of a query combine: graphite-web's `set` parameter of `/events/get_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOperation {
    /// No `set` (or any other value): events having all the tags (django-tagging's
    /// `with_all`).
    All,
    /// `set=union`: events having any of the tags (`with_any`).
    Union,
    /// `set=intersection`: events having all the tags (`with_intersection`), then
    /// graphite-web's positive-match filter on the event's listed tags.
    Intersection,
}

impl SetOperation {
    /// The operation of a `set` parameter value, as `Event.find_events` reads it.
    pub fn from_param(set: Option<&str>) -> SetOperation {
        match set {
            Some("union") => SetOperation::Union,
            Some("intersection") => SetOperation::Intersection,
            _ => SetOperation::All,
        }
    }
}

/// A tag query: which events `find_events` returns for a list of tags.
///
/// django-tagging looks the query's names up in its tag table first, so a name no event ever
/// had is silently dropped (`tags=deploy nosuch` matches the `deploy` events), and a query
/// whose names are all unknown matches nothing. `known` is that lookup, done once when the
/// query is built.
#[derive(Debug, Clone)]
pub struct TagQuery {
    /// The query's names as given (duplicates and empty names kept: the positive-match
    /// filter of `set=intersection` counts them).
    asked: Vec<String>,
    /// The query's names that some stored event has (django-tagging's `get_tag_list`).
    known: BTreeSet<String>,
    op: SetOperation,
}

impl TagQuery {
    /// A query for `asked` names combined by `op`, `is_known` telling whether any stored
    /// event has a name.
    pub fn new(asked: Vec<String>, op: SetOperation, is_known: impl Fn(&str) -> bool) -> Self {
        let known = asked.iter().filter(|t| is_known(t)).cloned().collect();
        TagQuery { asked, known, op }
    }

    /// Whether an event whose raw tag string is `raw` matches.
    pub fn matches(&self, raw: &str) -> bool {
        if self.known.is_empty() {
            return false;
        }
        let names = parse_tag_input(raw);
        let has = |t: &String| names.binary_search(t).is_ok();
        match self.op {
            SetOperation::All => self.known.iter().all(has),
            SetOperation::Union => self.known.iter().any(has),
            SetOperation::Intersection => {
                if !self.known.iter().all(has) {
                    return false;
                }
                // graphite-web's workaround: `len(set(tags) & set(event tags)) == len(tags)`,
                // against the tags `as_dict` lists (the raw string split on white space).
                let listed: BTreeSet<String> = py_split(raw).into_iter().collect();
                let asked: BTreeSet<&String> = self.asked.iter().collect();
                asked.iter().filter(|t| listed.contains(**t)).count() == self.asked.len()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parse_tag_input_as_django_tagging() {
        // What django-tagging 0.5's parse_tag_input answers (checked with the Debian package).
        assert_eq!(parse_tag_input("one"), v(&["one"]));
        assert_eq!(parse_tag_input("one two"), v(&["one", "two"]));
        assert_eq!(
            parse_tag_input("one two three"),
            v(&["one", "three", "two"])
        );
        assert_eq!(parse_tag_input("one one two two"), v(&["one", "two"]));
        assert_eq!(parse_tag_input("one, two"), v(&["one", "two"]));
        assert_eq!(parse_tag_input("one two, three"), v(&["one two", "three"]));
        assert_eq!(parse_tag_input("\"one\""), v(&["one"]));
        assert_eq!(parse_tag_input("\"one two\""), v(&["one two"]));
        assert_eq!(
            parse_tag_input("\"one two three\" four"),
            v(&["four", "one two three"])
        );
        assert_eq!(parse_tag_input("\"one\",two"), v(&["one", "two"]));
        assert_eq!(
            parse_tag_input("a-one, a-two and a-three"),
            v(&["a-one", "a-two and a-three"])
        );
        assert_eq!(parse_tag_input("\"one"), v(&["one"]));
        assert_eq!(parse_tag_input("\"one two"), v(&["one", "two"]));
        assert_eq!(
            parse_tag_input("\"one two, three"),
            v(&["one two", "three"])
        );
        assert_eq!(parse_tag_input(",one"), v(&["one"]));
        assert_eq!(parse_tag_input(",,,,"), Vec::<String>::new());
        assert_eq!(parse_tag_input("\",\",\",\""), v(&[","]));
        assert_eq!(parse_tag_input(""), Vec::<String>::new());
        assert_eq!(parse_tag_input("a,b c"), v(&["a", "b c"]));
    }

    #[test]
    fn queries_match_as_find_events() {
        let stored = ["deploy", "web", "db", "a", "b c"];
        let q = |tags: &[&str], op| TagQuery::new(v(tags), op, |t| stored.contains(&t));
        let all = SetOperation::All;
        assert!(q(&["deploy"], all).matches("deploy web"));
        assert!(q(&["deploy", "web"], all).matches("deploy web"));
        assert!(!q(&["deploy", "db"], all).matches("deploy web"));
        // Names no event has are dropped; all unknown matches nothing.
        assert!(q(&["deploy", "nosuch"], all).matches("deploy web"));
        assert!(!q(&["nosuch"], all).matches("nosuch"));
        assert!(!q(&[""], all).matches(""));
        assert!(!q(&["deploy"], all).matches(""));
        let union = SetOperation::Union;
        assert!(q(&["db", "web"], union).matches("deploy web"));
        assert!(!q(&["db"], union).matches("deploy web"));
        let inter = SetOperation::Intersection;
        assert!(q(&["deploy"], inter).matches("deploy web"));
        assert!(!q(&["deploy", "nosuch"], inter).matches("deploy web"));
        assert!(!q(&["deploy", "deploy"], inter).matches("deploy web"));
        // Tag `a` of the raw string "a,b c" matches, but is not among its listed tags.
        assert!(q(&["a"], all).matches("a,b c"));
        assert!(!q(&["a"], inter).matches("a,b c"));
    }
}
