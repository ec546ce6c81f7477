//! Imports run one way inside every crate of the workspace: no two modules of a crate refer to
//! each other, directly or in a ring.
//!
//! A module's references are the `crate::…` and `super::…` paths in its code (comments and its
//! `#[cfg(test)] mod tests` left out), each resolved to the longest module path it names. A
//! reference to one of the module's own ancestors is not counted: a child may use what its
//! parent defines, and the parent only declares and re-exports it (`mod x; pub use x::Y;`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// The workspace crates whose `src/` is checked.
const CRATES: &[&str] = &[
    "kms-core",
    "kms-cache",
    "kms-metrics",
    "kms-backend-vault",
    "kms-backend-aws",
    "kms-backend-keyring",
    "kms",
    "kms-cli",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `lib.rs` and `main.rs` are the root.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).expect("inside src");
    let mut parts: Module = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The file's code: comments dropped, and cut before its unit-test module.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_path(s: &str) -> Vec<String> {
    let mut path = Vec::new();
    let mut rest = s;
    loop {
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            break;
        }
        rest = &rest[ident.len()..];
        path.push(ident);
        match rest.strip_prefix("::") {
            Some(more) => rest = more,
            None => break,
        }
    }
    path
}

/// Every path a file refers to through `crate::` or `super::`, grouped imports expanded one
/// level (`use crate::{a::B, c}` gives `a::B` and `c`).
fn references(module: &Module, code: &str) -> Vec<Vec<String>> {
    // `super` of `a::b` (file a/b.rs or a/b/mod.rs) is `a`.
    let parent = module[..module.len().saturating_sub(1)].to_vec();
    let mut refs = Vec::new();
    for (marker, base) in [("crate::", Vec::new()), ("super::", parent)] {
        let mut rest = code;
        while let Some(i) = rest.find(marker) {
            let before = rest[..i].chars().last();
            rest = &rest[i + marker.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let item = item.trim();
                    if !item.is_empty() {
                        let mut p = base.clone();
                        p.extend(ident_path(item));
                        refs.push(p);
                    }
                }
            } else {
                let mut p = base.clone();
                p.extend(ident_path(rest));
                refs.push(p);
            }
        }
    }
    refs
}

fn graph(krate: &str) -> BTreeMap<Module, BTreeSet<Module>> {
    let src = workspace().join(krate).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<Module, PathBuf> = files
        .iter()
        .map(|f| (module_of(&src, f), f.clone()))
        .collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = fs::read_to_string(file).expect("readable source");
        let targets = edges.entry(module.clone()).or_default();
        for reference in references(module, &code(&text)) {
            let Some(target) = (1..=reference.len())
                .rev()
                .map(|n| reference[..n].to_vec())
                .find(|p| modules.contains_key(p))
            else {
                continue;
            };
            let ancestor = module.starts_with(&target);
            if !ancestor {
                targets.insert(target);
            }
        }
    }
    edges
}

/// Modules on a cycle, each cycle as its members (Tarjan's strongly connected components).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        found: Vec<Vec<Module>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a Module) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.stack.contains(&w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    component.push(w.clone());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn no_two_modules_of_a_crate_import_each_other() {
    let mut report = Vec::new();
    for krate in CRATES {
        for cycle in cycles(&graph(krate)) {
            let names: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
            report.push(format!("{krate}: {}", names.join(" ↔ ")));
        }
    }
    assert!(report.is_empty(), "import cycles:\n{}", report.join("\n"));
}

/// The checker itself finds a ring: the graph of a made-up crate whose two files name each
/// other.
#[test]
fn a_ring_is_found() {
    let a: Module = vec!["a".into()];
    let b: Module = vec!["b".into()];
    let refs = references(&a, &code("use crate::b::Thing;\n// crate::c::Not\n"));
    assert_eq!(refs, vec![vec!["b".to_owned(), "Thing".to_owned()]]);
    let grouped = references(&b, &code("use crate::{a::X, c};\n"));
    assert_eq!(
        grouped,
        vec![vec!["a".to_owned(), "X".to_owned()], vec!["c".to_owned()]]
    );
    let mut edges = BTreeMap::new();
    edges.insert(a.clone(), BTreeSet::from([b.clone()]));
    edges.insert(b.clone(), BTreeSet::from([a.clone()]));
    assert_eq!(cycles(&edges).len(), 1);
    edges.insert(b, BTreeSet::new());
    assert!(cycles(&edges).is_empty());
}

/// kms-core keeps its vocabulary at the top of `src/` and everything else in folders.
#[test]
fn kms_core_has_few_files_at_the_top() {
    let src = workspace().join("kms-core/src");
    let top: Vec<_> = fs::read_dir(&src)
        .expect("kms-core/src")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    assert!(
        top.len() <= 12,
        "{} files at the top of kms-core/src: {top:?}",
        top.len()
    );
}
