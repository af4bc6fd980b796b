//! The metric name index: every plain (untagged) metric known on disk or in the cache, as a
//! tree of nodes, answering graphite-web's `find` for a path expression without touching the
//! filesystem.
//!
//! It is filled by a scan of the whisper directory at start (and again every
//! `cache.index_rescan_interval`, to see files other tools wrote) and by the cache the
//! moment a new metric is accepted, so a point is findable before its file exists. A
//! directory of the scan is a branch even when it holds no metric file yet, as graphite-web's
//! standard finder lists every directory it matches.
//!
//! It never reads or writes whisper data, and it does not order answers for a view: `find`
//! answers in path order, and each endpoint sorts as its graphite-web view does.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;

use parking_lot::RwLock;

use super::glob::{split_nodes, NodePattern};

#[derive(Debug, Default)]
struct Node {
    children: BTreeMap<Box<str>, Node>,
    /// A metric lives here (a `.wsp` file, or a name the cache accepted).
    leaf: bool,
    /// A directory of the whisper tree lives here: a branch even with no children.
    dir: bool,
}

impl Node {
    /// Whether graphite-web's finder would give a branch here: a directory (an empty one too)
    /// or a node with metrics below it (the cache's, whose directory may not exist yet).
    fn is_branch(&self) -> bool {
        self.dir || !self.children.is_empty()
    }
}

/// One answer of [`MetricIndex::find`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FoundNode {
    /// The full dotted path (`collectd.web1.load`).
    pub path: String,
    /// Whether a metric (a leaf) lives at this path; `false` for a branch.
    pub is_leaf: bool,
}

impl FoundNode {
    /// The last node of the path (graphite-web's `node.name`).
    pub fn name(&self) -> &str {
        self.path.rsplit('.').next().unwrap_or(&self.path)
    }
}

/// The tree of metric names; cheap to share (`&self` methods, internally locked).
#[derive(Debug, Default)]
pub struct MetricIndex {
    root: RwLock<Node>,
}

impl MetricIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a metric (dotted path); returns whether it was new.
    pub fn insert(&self, name: &str) -> bool {
        if self.contains(name) {
            return false;
        }
        let mut root = self.root.write();
        let mut node = &mut *root;
        for part in name.split('.') {
            node = node.children.entry(part.into()).or_default();
        }
        let new = !node.leaf;
        node.leaf = true;
        new
    }

    /// Whether the metric is known.
    pub fn contains(&self, name: &str) -> bool {
        let root = self.root.read();
        let mut node = &*root;
        for part in name.split('.') {
            match node.children.get(part) {
                Some(n) => node = n,
                None => return false,
            }
        }
        node.leaf
    }

    /// Adds a directory of the whisper tree (dotted path): a branch, even while empty.
    pub fn insert_dir(&self, name: &str) {
        let mut root = self.root.write();
        let mut node = &mut *root;
        for part in name.split('.') {
            node = node.children.entry(part.into()).or_default();
        }
        node.dir = true;
    }

    /// Removes a metric, and any branch left empty by it (a scanned directory stays).
    pub fn remove(&self, name: &str) {
        fn rec(node: &mut Node, parts: &[&str]) -> bool {
            match parts.split_first() {
                None => node.leaf = false,
                Some((first, rest)) => {
                    if let Some(child) = node.children.get_mut(*first) {
                        if rec(child, rest) {
                            node.children.remove(*first);
                        }
                    }
                }
            }
            !node.leaf && !node.dir && node.children.is_empty()
        }
        let parts: Vec<&str> = name.split('.').collect();
        rec(&mut self.root.write(), &parts);
    }

    /// Forgets that a directory lives at `name` (it was removed): the node goes when nothing
    /// else keeps it (a metric, children, or an ancestor's own directory flag stays).
    pub fn forget_dir(&self, name: &str) {
        fn rec(node: &mut Node, parts: &[&str]) -> bool {
            match parts.split_first() {
                None => node.dir = false,
                Some((first, rest)) => {
                    if let Some(child) = node.children.get_mut(*first) {
                        if rec(child, rest) {
                            node.children.remove(*first);
                        }
                    }
                }
            }
            !node.leaf && !node.dir && node.children.is_empty()
        }
        let parts: Vec<&str> = name.split('.').collect();
        rec(&mut self.root.write(), &parts);
    }

    /// Whether anything (a metric or a branch) lives at `name`.
    pub fn exists(&self, name: &str) -> bool {
        let root = self.root.read();
        let mut node = &*root;
        for part in name.split('.') {
            match node.children.get(part) {
                Some(n) => node = n,
                None => return false,
            }
        }
        node.leaf || node.is_branch()
    }

    /// The metrics at `name` and below it (a branch's subtree), sorted; empty when none.
    pub fn subtree(&self, name: &str) -> Vec<String> {
        fn rec(n: &Node, prefix: &mut String, out: &mut Vec<String>) {
            if n.leaf {
                out.push(prefix.clone());
            }
            for (name, child) in &n.children {
                let len = prefix.len();
                prefix.push('.');
                prefix.push_str(name);
                rec(child, prefix, out);
                prefix.truncate(len);
            }
        }
        let root = self.root.read();
        let mut node = &*root;
        for part in name.split('.') {
            match node.children.get(part) {
                Some(n) => node = n,
                None => return Vec::new(),
            }
        }
        let mut out = Vec::new();
        rec(node, &mut name.to_string(), &mut out);
        out.sort();
        out
    }

    /// Number of metrics (leaves).
    pub fn len(&self) -> usize {
        fn count(n: &Node) -> usize {
            n.leaf as usize + n.children.values().map(count).sum::<usize>()
        }
        count(&self.root.read())
    }

    /// Whether the index holds no metric (empty directories do not count).
    pub fn is_empty(&self) -> bool {
        fn any_leaf(n: &Node) -> bool {
            n.leaf || n.children.values().any(any_leaf)
        }
        !any_leaf(&self.root.read())
    }

    /// Every node matching a path expression, as graphite-web's standard finder and
    /// `Store.find` answer it: each path once, sorted by path; a path that is both a metric
    /// and a branch (`a.b.wsp` beside `a/b/`) given twice, branch first, as `Store._list_nodes`
    /// yields them; a directory with no metric file is a branch. graphite-web's own order is
    /// random (`_list_nodes` shuffles); the views sort by name (`find_view`) or by path
    /// (`expand_view`, `json_nodes`), which this order makes deterministic. Hidden nodes
    /// (starting with `.`) are skipped unless the pattern names them. `limit` caps the answer
    /// (the caller reports the overflow).
    pub fn find(&self, pattern: &str, leaves_only: bool, limit: usize) -> Vec<FoundNode> {
        let patterns: Vec<NodePattern> = split_nodes(pattern)
            .into_iter()
            .map(NodePattern::compile)
            .collect();
        let root = self.root.read();
        let mut out = Vec::new();
        let mut prefix = String::new();
        walk(&root, &patterns, &mut prefix, leaves_only, limit, &mut out);
        out.sort();
        out.dedup();
        out
    }

    /// Every metric, sorted (graphite-web's `/metrics/index.json`).
    pub fn all(&self) -> Vec<String> {
        fn rec(n: &Node, prefix: &mut String, out: &mut Vec<String>) {
            for (name, child) in &n.children {
                let len = prefix.len();
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(name);
                if child.leaf {
                    out.push(prefix.clone());
                }
                rec(child, prefix, out);
                prefix.truncate(len);
            }
        }
        let mut out = Vec::new();
        rec(&self.root.read(), &mut String::new(), &mut out);
        out.sort();
        out
    }

    /// Adds every `*.wsp` file under `whisper_dir` as a metric and every directory as a
    /// branch (not `_tagged/`, which the tag index reads, nor hidden entries); returns how
    /// many metrics were found. Unreadable directories are skipped.
    pub fn scan(&self, whisper_dir: &Path) -> usize {
        let mut names = Vec::new();
        let mut dirs = Vec::new();
        scan_dir(whisper_dir, &mut String::new(), &mut names, &mut dirs);
        for dir in dirs {
            self.insert_dir(&dir);
        }
        let n = names.len();
        for name in names {
            self.insert(&name);
        }
        n
    }
}

fn scan_dir(dir: &Path, prefix: &mut String, out: &mut Vec<String>, dirs: &mut Vec<String>) {
    let _ = walk_tree(dir, prefix, &mut |entry| {
        match entry {
            Walked::Dir(name) => dirs.push(name.to_string()),
            Walked::File { name, .. } => out.push(name.to_string()),
        }
        ControlFlow::Continue(())
    });
}

/// One entry [`walk_tree`] visits.
pub(super) enum Walked<'a> {
    /// A directory (not a link to one), by its metric prefix (`a.b` for `a/b/`).
    Dir(&'a str),
    /// A whisper file: its metric name (`a.b.c` for `a/b/c.wsp`) and path; `regular` is false
    /// for a symbolic link (the index lists links to files, a migration leaves them alone).
    File {
        name: &'a str,
        path: &'a Path,
        regular: bool,
    },
}

/// Walks the plain (untagged) tree of the whisper directory `dir` depth first, `prefix`
/// being the metric prefix of `dir` (empty at the top), as the index scan and the retention
/// migration read it: hidden entries (`.x`, a migration's temporary files) and the top
/// `_tagged` folder are skipped, as are names with a `.` in their stem (no metric has that
/// path). Stops when `visit` breaks, and says so.
pub(super) fn walk_tree(
    dir: &Path,
    prefix: &mut String,
    visit: &mut dyn FnMut(Walked<'_>) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return ControlFlow::Continue(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') || (prefix.is_empty() && name == "_tagged") {
            continue;
        }
        let Ok(ft) = entry.file_type() else { continue };
        let len = prefix.len();
        if ft.is_dir() {
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(name);
            let mut flow = visit(Walked::Dir(prefix));
            if flow.is_continue() {
                flow = walk_tree(&entry.path(), prefix, visit);
            }
            prefix.truncate(len);
            flow?;
        } else if let Some(stem) = name.strip_suffix(".wsp") {
            if stem.is_empty() || stem.contains('.') {
                continue;
            }
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(stem);
            let flow = visit(Walked::File {
                name: prefix,
                path: &entry.path(),
                regular: ft.is_file(),
            });
            prefix.truncate(len);
            flow?;
        }
    }
    ControlFlow::Continue(())
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn walk(
    node: &Node,
    patterns: &[NodePattern],
    prefix: &mut String,
    leaves_only: bool,
    limit: usize,
    out: &mut Vec<FoundNode>,
) {
    if out.len() >= limit {
        return;
    }
    let Some((pat, rest)) = patterns.split_first() else {
        return;
    };
    if *pat == NodePattern::GlobStar {
        // `**` matches zero or more nodes; a terminal `**` means "everything below".
        let rest_or_all: Vec<NodePattern> = if rest.is_empty() {
            vec![NodePattern::compile("*")]
        } else {
            rest.to_vec()
        };
        walk(node, &rest_or_all, prefix, leaves_only, limit, out);
        for (name, child) in &node.children {
            if name.starts_with('.') {
                continue;
            }
            let len = prefix.len();
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(name);
            walk(child, patterns, prefix, leaves_only, limit, out);
            prefix.truncate(len);
        }
        return;
    }
    let visit = |name: &str, child: &Node, out: &mut Vec<FoundNode>| {
        let path = join(prefix, name);
        if rest.is_empty() {
            if child.leaf {
                out.push(FoundNode {
                    path: path.clone(),
                    is_leaf: true,
                });
            }
            if child.is_branch() && !leaves_only {
                out.push(FoundNode {
                    path,
                    is_leaf: false,
                });
            }
        } else {
            let mut p = path;
            walk(child, rest, &mut p, leaves_only, limit, out);
        }
    };
    // An empty node (`a..b`, `a.b.`, `{,x}`) names the directory it is in, as
    // `os.path.join(dir, '')` does for graphite-web's finder: `a..b` is `a.b`, and a trailing
    // empty node is the branch itself, listed as `a.b.` (name ``).
    let stay = match pat.literal_alternatives() {
        Some(names) => {
            let mut stay = false;
            for name in names {
                if name.is_empty() {
                    stay = true;
                } else if let Some(child) = node.children.get(name.as_str()) {
                    visit(&name, child, out);
                }
            }
            stay
        }
        None => {
            for (name, child) in &node.children {
                if out.len() >= limit {
                    return;
                }
                if name.starts_with('.') {
                    continue;
                }
                if pat.matches(name) {
                    visit(name, child, out);
                }
            }
            false
        }
    };
    if stay && (prefix.is_empty() || node.is_branch()) {
        if !rest.is_empty() {
            walk(node, rest, prefix, leaves_only, limit, out);
        } else if !leaves_only {
            let path = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}.")
            };
            out.push(FoundNode {
                path,
                is_leaf: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(names: &[&str]) -> MetricIndex {
        let i = MetricIndex::new();
        for n in names {
            i.insert(n);
        }
        i
    }

    #[test]
    fn finds_like_graphite_web() {
        let i = idx(&["a.b.c", "a.b.d", "a.x", "a.b", "z.y.w"]);
        let f = i.find("a.*", false, 100);
        assert_eq!(
            f,
            vec![
                FoundNode {
                    path: "a.b".into(),
                    is_leaf: false
                },
                FoundNode {
                    path: "a.b".into(),
                    is_leaf: true
                },
                FoundNode {
                    path: "a.x".into(),
                    is_leaf: true
                },
            ]
        );
        assert_eq!(i.find("a.b.{c,d}", false, 100).len(), 2);
        assert_eq!(i.find("a.b.[c]", false, 100)[0].path, "a.b.c");
        assert_eq!(i.find("*.*.*", true, 100).len(), 3);
        assert_eq!(i.find("a.*", true, 100).len(), 2);
        assert_eq!(i.find("nope.*", false, 100).len(), 0);
        assert_eq!(i.find("**", true, 100).len(), 5);
        assert_eq!(i.find("a.**.d", true, 100)[0].path, "a.b.d");
        assert_eq!(i.find("*", false, 1).len(), 1);
    }

    #[test]
    fn insert_remove_and_all() {
        let i = idx(&["a.b.c", "a.d"]);
        assert!(i.contains("a.b.c"));
        assert!(!i.contains("a.b"));
        assert!(!i.insert("a.d"));
        i.remove("a.b.c");
        assert!(!i.contains("a.b.c"));
        assert_eq!(i.all(), vec!["a.d".to_string()]);
        assert_eq!(i.find("a.*", false, 10).len(), 1);
        assert_eq!(i.len(), 1);
    }

    #[test]
    fn subtrees_and_forgotten_directories() {
        let i = idx(&["a.b", "a.b.c", "a.b.d.e", "a.x"]);
        assert_eq!(i.subtree("a.b"), vec!["a.b", "a.b.c", "a.b.d.e"]);
        assert_eq!(i.subtree("a.b.d.e"), vec!["a.b.d.e"]);
        assert!(i.subtree("nope").is_empty());
        assert!(i.exists("a.b.d") && !i.exists("a.b.q"));
        i.insert_dir("q.r");
        i.forget_dir("q.r");
        assert!(
            i.find("q", false, 10).is_empty(),
            "the emptied branch goes too"
        );
        i.remove("a.b.d.e");
        i.forget_dir("a.b.d");
        assert!(!i.exists("a.b.d"));
        assert!(i.exists("a.b"));
    }

    #[test]
    fn empty_directories_are_branches() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/empty")).unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/c.wsp"), b"").unwrap();
        let i = MetricIndex::new();
        assert_eq!(i.scan(dir.path()), 1);
        let f = i.find("a.*", false, 100);
        assert_eq!(
            f.iter()
                .map(|n| (n.path.as_str(), n.is_leaf))
                .collect::<Vec<_>>(),
            vec![("a.b", false), ("a.empty", false)]
        );
        assert!(i.find("a.empty.*", false, 100).is_empty());
        assert!(i.find("a.*", true, 100).is_empty());
        // Removing the last metric of a scanned directory keeps the directory.
        i.remove("a.b.c");
        assert_eq!(i.find("a.b", false, 100).len(), 1);
        assert!(i.is_empty());
        assert_eq!(i.len(), 0);
    }

    #[test]
    fn an_empty_node_names_its_directory() {
        let i = idx(&["a.b.c", "a.d"]);
        assert_eq!(i.find("a..b", false, 100)[0].path, "a.b");
        let f = i.find("a.b.", false, 100);
        assert_eq!(
            f,
            vec![FoundNode {
                path: "a.b.".into(),
                is_leaf: false
            }]
        );
        assert_eq!(f[0].name(), "");
        assert!(i.find("a.d.", false, 100).is_empty());
        assert_eq!(i.find("a.{,b}.c", true, 100)[0].path, "a.b.c");
    }

    #[test]
    fn scans_a_whisper_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::create_dir_all(dir.path().join("_tagged/abc")).unwrap();
        std::fs::write(dir.path().join("a/b/c.wsp"), b"").unwrap();
        std::fs::write(dir.path().join("a/d.wsp"), b"").unwrap();
        std::fs::write(dir.path().join("a/.hidden.wsp"), b"").unwrap();
        std::fs::write(dir.path().join("a/notes.txt"), b"").unwrap();
        std::fs::write(dir.path().join("_tagged/abc/x;t=v.wsp"), b"").unwrap();
        let i = MetricIndex::new();
        assert_eq!(i.scan(dir.path()), 2);
        assert_eq!(i.all(), vec!["a.b.c".to_string(), "a.d".to_string()]);
    }
}
