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

/// A node's name, inline up to 24 bytes (every host and metric name in practice): a leaf
/// costs no allocation of its own.
type Name = compact_str::CompactString;

/// Most children a node keeps in a sorted vector ([`Children::Few`]).
const FEW: usize = 32;

/// A node's children in name order. Few (a host's twenty metrics): a sorted vector grown by
/// a quarter at a time, with no tree nodes around it — a B-tree of twenty entries costs
/// about a hundred bytes each. Many (the fifty thousand hosts under `servers`): a B-tree,
/// where inserting into a vector would move half of it each time.
#[derive(Debug)]
enum Children {
    Few(Vec<(Name, Node)>),
    // Boxed, so the enum is a vector's 24 bytes (the box sits in the vector's niche).
    #[allow(clippy::box_collection)]
    Many(Box<BTreeMap<Name, Node>>),
}

impl Default for Children {
    fn default() -> Self {
        Children::Few(Vec::new())
    }
}

impl Children {
    fn get(&self, name: &str) -> Option<&Node> {
        match self {
            Children::Few(v) => v
                .binary_search_by(|(n, _)| n.as_str().cmp(name))
                .ok()
                .map(|i| &v[i].1),
            Children::Many(m) => m.get(name),
        }
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut Node> {
        match self {
            Children::Few(v) => match v.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
                Ok(i) => Some(&mut v[i].1),
                Err(_) => None,
            },
            Children::Many(m) => m.get_mut(name),
        }
    }

    /// The child called `name`, added (empty) if missing.
    fn get_or_insert(&mut self, name: &str) -> &mut Node {
        if let Children::Few(v) = self {
            if v.len() >= FEW && v.binary_search_by(|(n, _)| n.as_str().cmp(name)).is_err() {
                let many: BTreeMap<Name, Node> = std::mem::take(v).into_iter().collect();
                *self = Children::Many(Box::new(many));
            }
        }
        match self {
            Children::Few(v) => {
                let i = match v.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
                    Ok(i) => return &mut v[i].1,
                    Err(i) => i,
                };
                if v.len() == v.capacity() {
                    v.reserve_exact((v.len() / 4).max(2));
                }
                v.insert(i, (Name::from(name), Node::default()));
                &mut v[i].1
            }
            Children::Many(m) => m.entry(Name::from(name)).or_default(),
        }
    }

    fn remove(&mut self, name: &str) {
        match self {
            Children::Few(v) => {
                if let Ok(i) = v.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
                    v.remove(i);
                }
            }
            Children::Many(m) => {
                m.remove(name);
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Children::Few(v) => v.is_empty(),
            Children::Many(m) => m.is_empty(),
        }
    }

    /// Every child in name order.
    fn iter(&self) -> ChildIter<'_> {
        match self {
            Children::Few(v) => ChildIter::Few(v.iter()),
            Children::Many(m) => ChildIter::Many(m.range::<str, _>(..)),
        }
    }

    /// The children whose names start with `prefix`, in name order.
    fn starting_with<'a, 'p>(
        &'a self,
        prefix: &'p str,
    ) -> impl Iterator<Item = (&'a str, &'a Node)> + use<'a, 'p> {
        let from = match self {
            Children::Few(v) => {
                ChildIter::Few(v[v.partition_point(|(n, _)| n.as_str() < prefix)..].iter())
            }
            Children::Many(m) => ChildIter::Many(m.range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))),
        };
        from.take_while(move |(name, _)| name.starts_with(prefix))
    }

    fn values(&self) -> impl Iterator<Item = &Node> {
        self.iter().map(|(_, n)| n)
    }
}

/// [`Children::iter`].
enum ChildIter<'a> {
    Few(std::slice::Iter<'a, (Name, Node)>),
    Many(std::collections::btree_map::Range<'a, Name, Node>),
}

impl<'a> Iterator for ChildIter<'a> {
    type Item = (&'a str, &'a Node);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ChildIter::Few(it) => it.next().map(|(n, c)| (n.as_str(), c)),
            ChildIter::Many(it) => it.next().map(|(n, c)| (n.as_str(), c)),
        }
    }
}

impl<'a> IntoIterator for &'a Children {
    type Item = (&'a str, &'a Node);
    type IntoIter = ChildIter<'a>;
    fn into_iter(self) -> ChildIter<'a> {
        self.iter()
    }
}

#[derive(Debug, Default)]
struct Node {
    children: Children,
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
            node = node.children.get_or_insert(part);
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
            node = node.children.get_or_insert(part);
        }
        node.dir = true;
    }

    /// Removes a metric, and any branch left empty by it (a scanned directory stays).
    pub fn remove(&self, name: &str) {
        fn rec(node: &mut Node, parts: &[&str]) -> bool {
            match parts.split_first() {
                None => node.leaf = false,
                Some((first, rest)) => {
                    if let Some(child) = node.children.get_mut(first) {
                        if rec(child, rest) {
                            node.children.remove(first);
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
                    if let Some(child) = node.children.get_mut(first) {
                        if rec(child, rest) {
                            node.children.remove(first);
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
        find_over(&&*self.root.read(), pattern, leaves_only, limit)
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
        // Inserted as the walk meets them (a million names never sit in a list), each under
        // its own short write lock, so `find` answers between them.
        let mut n = 0;
        let _ = walk_tree(whisper_dir, &mut String::new(), &mut |entry| {
            match entry {
                Walked::Dir(name) => self.insert_dir(name),
                Walked::File { name, .. } => {
                    self.insert(name);
                    n += 1;
                }
            }
            ControlFlow::Continue(())
        });
        n
    }
}

/// [`MetricIndex::find`] answered from the whisper directory itself, as graphite-web's
/// standard finder answers it (one `read_dir` per listed directory), with the same answer the
/// index gives once a scan of the same tree has filled it: what [`super::Store::find`] uses
/// while the start scan is still under way.
pub(super) fn fs_find(
    whisper_dir: &Path,
    pattern: &str,
    leaves_only: bool,
    limit: usize,
) -> Vec<FoundNode> {
    find_over(&FsNode::root(whisper_dir), pattern, leaves_only, limit)
}

fn find_over<T: FindTree>(
    root: &T,
    pattern: &str,
    leaves_only: bool,
    limit: usize,
) -> Vec<FoundNode> {
    let patterns: Vec<Step> = split_nodes(pattern)
        .into_iter()
        .map(Step::compile)
        .collect();
    let mut out = Vec::new();
    let _ = walk(
        root,
        &patterns,
        &mut String::new(),
        leaves_only,
        limit,
        &mut out,
    );
    out.sort();
    out.dedup();
    out
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

/// What a directory entry named `name` is in the plain metric tree — a branch (`Dir`) or a
/// metric (`Metric`, by its stem) — by the rules both the index scan ([`walk_tree`]) and the
/// directory read of a start ([`FsNode`]) follow, so the two answer alike: hidden entries
/// (`.x`, a migration's temporary files) and the top `_tagged` folder are not there, nor are
/// files other than `x.wsp` or stems with a `.` (no metric has that path). `top`: `name` is in
/// the whisper directory itself.
enum TreeEntry<'a> {
    Dir,
    Metric(&'a str),
}

fn tree_entry(name: &str, is_dir: bool, top: bool) -> Option<TreeEntry<'_>> {
    if name.starts_with('.') || (top && name == "_tagged") {
        return None;
    }
    if is_dir {
        return Some(TreeEntry::Dir);
    }
    let stem = name.strip_suffix(".wsp")?;
    (!stem.is_empty() && !stem.contains('.')).then_some(TreeEntry::Metric(stem))
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
        let Ok(ft) = entry.file_type() else { continue };
        let len = prefix.len();
        match tree_entry(name, ft.is_dir(), prefix.is_empty()) {
            None => {}
            Some(TreeEntry::Dir) => {
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
            }
            Some(TreeEntry::Metric(stem)) => {
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

/// A tree [`walk`] answers `find` over: the index's nodes, or the whisper directory itself
/// ([`FsNode`]) while the index is still being filled at start.
trait FindTree: Sized {
    /// A metric lives here.
    fn leaf(&self) -> bool;
    /// graphite-web's finder gives a branch here.
    fn branch(&self) -> bool;
    /// The child called `name`, if any.
    fn child(&self, name: &str) -> Option<Self>;
    /// Every child in name order, until `visit` breaks.
    fn each_child(&self, visit: &mut dyn FnMut(&str, Self) -> ControlFlow<()>) -> ControlFlow<()>;
    /// Every child whose name starts with `prefix`, in name order, until `visit` breaks.
    fn each_child_from(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(&str, Self) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        self.each_child(&mut |name, child| {
            if name.starts_with(prefix) {
                visit(name, child)
            } else {
                ControlFlow::Continue(())
            }
        })
    }
}

impl FindTree for &Node {
    fn leaf(&self) -> bool {
        self.leaf
    }
    fn branch(&self) -> bool {
        self.is_branch()
    }
    fn child(&self, name: &str) -> Option<Self> {
        self.children.get(name)
    }
    fn each_child(&self, visit: &mut dyn FnMut(&str, Self) -> ControlFlow<()>) -> ControlFlow<()> {
        for (name, child) in &self.children {
            visit(name, child)?;
        }
        ControlFlow::Continue(())
    }
    fn each_child_from(
        &self,
        prefix: &str,
        visit: &mut dyn FnMut(&str, Self) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        for (name, child) in self.children.starting_with(prefix) {
            visit(name, child)?;
        }
        ControlFlow::Continue(())
    }
}

/// A node of the whisper directory read directly, as graphite-web's standard finder reads
/// it, with the index scan's rules ([`walk_tree`]): `x.wsp` (a file or a link) is a leaf, a
/// directory (not a link to one) a branch; hidden names, the top `_tagged` folder and stems
/// with a dot are not there. Each listing is one `read_dir`, each literal name two `lstat`s.
pub(super) struct FsNode {
    path: std::path::PathBuf,
    leaf: bool,
    dir: bool,
    top: bool,
}

impl FsNode {
    /// The whisper directory's top, a branch.
    pub(super) fn root(whisper_dir: &Path) -> FsNode {
        FsNode {
            path: whisper_dir.to_path_buf(),
            leaf: false,
            dir: true,
            top: true,
        }
    }

    /// Whether `name`, a node of a pattern, can name an entry here at all: not empty, no path
    /// separator or NUL (which would reach outside the tree). The tree's own rules follow
    /// ([`tree_entry`]).
    fn nameable(name: &str) -> bool {
        !name.is_empty() && !name.contains(['/', '\0'])
    }
}

impl FindTree for FsNode {
    fn leaf(&self) -> bool {
        self.leaf
    }
    fn branch(&self) -> bool {
        self.dir
    }
    fn child(&self, name: &str) -> Option<Self> {
        if !self.dir || !FsNode::nameable(name) {
            return None;
        }
        let path = self.path.join(name);
        let file = format!("{name}.wsp");
        let dir = tree_entry(name, true, self.top).is_some()
            && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        let leaf = tree_entry(&file, false, self.top).is_some()
            && std::fs::symlink_metadata(self.path.join(&file)).is_ok_and(|m| !m.is_dir());
        (leaf || dir).then_some(FsNode {
            path,
            leaf,
            dir,
            top: false,
        })
    }
    fn each_child(&self, visit: &mut dyn FnMut(&str, Self) -> ControlFlow<()>) -> ControlFlow<()> {
        if !self.dir {
            return ControlFlow::Continue(());
        }
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return ControlFlow::Continue(());
        };
        // name → (leaf, dir)
        let mut found: BTreeMap<String, (bool, bool)> = BTreeMap::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(ft) = entry.file_type() else { continue };
            match tree_entry(name, ft.is_dir(), self.top) {
                None => {}
                Some(TreeEntry::Dir) => found.entry(name.to_string()).or_default().1 = true,
                Some(TreeEntry::Metric(stem)) => {
                    found.entry(stem.to_string()).or_default().0 = true
                }
            }
        }
        for (name, (leaf, dir)) in found {
            let path = self.path.join(&name);
            visit(
                &name,
                FsNode {
                    path,
                    leaf,
                    dir,
                    top: false,
                },
            )?;
        }
        ControlFlow::Continue(())
    }
}

/// The matches of `patterns` (one per node) below `node`, whose path is `prefix`, pushed to
/// `out` (unsorted) until it holds `limit`.
/// One node of a path expression as [`walk`] uses it: its literal alternatives (`{a,b}`, a
/// plain name) worked out once, not at every node the walk visits.
struct Step {
    pat: NodePattern,
    literals: Option<Vec<String>>,
    /// What every match starts with ([`NodePattern::literal_prefix`]): `big.h1*` visits the
    /// ten thousand `h1…` hosts, not all fifty thousand.
    prefix: String,
}

impl Step {
    fn compile(node: &str) -> Step {
        let pat = NodePattern::compile(node);
        let literals = pat.literal_alternatives();
        let prefix = pat.literal_prefix();
        Step {
            pat,
            literals,
            prefix,
        }
    }
}

fn walk<T: FindTree>(
    node: &T,
    patterns: &[Step],
    prefix: &mut String,
    leaves_only: bool,
    limit: usize,
    out: &mut Vec<FoundNode>,
) -> ControlFlow<()> {
    if out.len() >= limit {
        return ControlFlow::Break(());
    }
    let Some((step, rest)) = patterns.split_first() else {
        return ControlFlow::Continue(());
    };
    let pat = &step.pat;
    if *pat == NodePattern::GlobStar {
        // `**` matches zero or more nodes; a terminal `**` means "everything below".
        if rest.is_empty() {
            walk(node, &[Step::compile("*")], prefix, leaves_only, limit, out)?;
        } else {
            walk(node, rest, prefix, leaves_only, limit, out)?;
        }
        return node.each_child(&mut |name, child| {
            if name.starts_with('.') {
                return ControlFlow::Continue(());
            }
            let len = prefix.len();
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(name);
            let flow = walk(&child, patterns, prefix, leaves_only, limit, out);
            prefix.truncate(len);
            flow
        });
    }
    let visit = |name: &str, child: T, prefix: &str, out: &mut Vec<FoundNode>| {
        let path = join(prefix, name);
        if rest.is_empty() {
            if child.leaf() {
                out.push(FoundNode {
                    path: path.clone(),
                    is_leaf: true,
                });
            }
            if child.branch() && !leaves_only {
                out.push(FoundNode {
                    path,
                    is_leaf: false,
                });
            }
            ControlFlow::Continue(())
        } else {
            let mut p = path;
            walk(&child, rest, &mut p, leaves_only, limit, out)
        }
    };
    // An empty node (`a..b`, `a.b.`, `{,x}`) names the directory it is in, as
    // `os.path.join(dir, '')` does for graphite-web's finder: `a..b` is `a.b`, and a trailing
    // empty node is the branch itself, listed as `a.b.` (name ``).
    let stay = match &step.literals {
        Some(names) => {
            let mut stay = false;
            for name in names {
                if name.is_empty() {
                    stay = true;
                } else if let Some(child) = node.child(name) {
                    visit(name, child, prefix, out)?;
                }
            }
            stay
        }
        None => {
            node.each_child_from(&step.prefix, &mut |name, child| {
                if out.len() >= limit {
                    return ControlFlow::Break(());
                }
                if name.starts_with('.') || !pat.matches(name) {
                    return ControlFlow::Continue(());
                }
                visit(name, child, prefix, out)
            })?;
            false
        }
    };
    if stay && (prefix.is_empty() || node.branch()) {
        if !rest.is_empty() {
            walk(node, rest, prefix, leaves_only, limit, out)?;
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
    ControlFlow::Continue(())
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

    /// A million leaves cost a node and a name each: keep them small.
    #[test]
    fn nodes_are_small() {
        assert_eq!(std::mem::size_of::<Children>(), 24);
        assert_eq!(std::mem::size_of::<(Name, Node)>(), 56);
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

    /// The directory read while the start scan runs must answer as the index does once the
    /// scan has filled it: hidden entries, the top `_tagged`, dotted stems, links to
    /// directories, empty directories, metric-and-branch names, `..`, `**`, braces, limits.
    #[test]
    fn the_directory_answers_as_the_scanned_index() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let touch = |rel: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"").unwrap();
        };
        for f in [
            "a/b/c.wsp",
            "a/b/d.wsp",
            "a/b.wsp",
            "a/x.wsp",
            "a/.hidden.wsp",
            "a/.h/y.wsp",
            "a/dot.ted.wsp",
            "a/notes.txt",
            "_tagged/abc/def/x;y=z.wsp",
            "_tagged.wsp",
            "z/_tagged/q.wsp",
            "z/y/w.wsp",
            "m/n/o/p.wsp",
        ] {
            touch(f);
        }
        std::fs::create_dir_all(root.join("e/empty")).unwrap();
        // More children than a node keeps in a vector: the B-tree and its prefix ranges.
        for h in (0..FEW + 10).rev() {
            touch(&format!("w/h{h:02}.wsp"));
            touch(&format!("w/h{h:02}/x.wsp"));
        }
        std::os::unix::fs::symlink(root.join("a/b"), root.join("linkdir")).unwrap();
        std::os::unix::fs::symlink(root.join("a/x.wsp"), root.join("a/linked.wsp")).unwrap();
        let index = MetricIndex::new();
        index.scan(root);
        for pattern in [
            "*",
            "a.*",
            "a.b",
            "a.b.*",
            "a.{b,x}",
            "a.{b,x,}",
            "a..b",
            "a.b.",
            "a.[bx]",
            "a.dot",
            "a.dot.ted",
            "a.hidden",
            "a..hidden",
            "a.h.*",
            "_tagged",
            "_tagged.*",
            "z.*",
            "z.*.*",
            "e.*",
            "linkdir",
            "linkdir.*",
            "a.linked",
            "**",
            "a.**",
            "m.**.p",
            "*.*.*",
            "nope.*",
            "a.b/c",
            "",
            "w.*",
            "w.h1*",
            "w.h1*.x",
            "w.{h1,h2}*",
            "w.h3?",
            "w.h[23]*",
            "w.*1",
            "w.h4*",
            "w.h99*",
            "w.**.x",
        ] {
            for leaves_only in [false, true] {
                for limit in [100, 2] {
                    assert_eq!(
                        fs_find(root, pattern, leaves_only, limit),
                        index.find(pattern, leaves_only, limit),
                        "{pattern:?} leaves_only={leaves_only} limit={limit}"
                    );
                }
            }
        }
        assert_eq!(
            fs_find(root, "a.*", false, 100).len(),
            4,
            "b twice, x, linked"
        );
        assert_eq!(index.find("w.h1*", true, 100).len(), 10);
        assert_eq!(index.find("w.h3*.x", true, 100).len(), 10);
        // Removing brings the B-tree's children down; the rest is still found.
        for h in 0..FEW {
            index.remove(&format!("w.h{h:02}"));
        }
        assert_eq!(index.find("w.h4*", true, 100).len(), 2);
        assert_eq!(index.find("w.*.x", true, 100).len(), FEW + 10);
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
