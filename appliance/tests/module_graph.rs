//! No module imports a module that imports it back, in any crate of the
//! workspace. A module is a source file; it depends on another when it names
//! an item there through `crate::`, `super::` or `self::` paths (in `use`
//! declarations and in code), with re-exports (`pub use`) followed to the
//! module that defines the item (relative 2018-style paths to child modules
//! included), so a `mod.rs` that only re-exports is not a
//! hub that hides cycles. `#[cfg(test)]` modules are left out: a unit test
//! may reach anywhere. Run alone: `cargo test -p appliance --test module_graph`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// A module: its path from the crate root (`[]` for lib.rs/main.rs).
type ModPath = Vec<String>;

#[derive(Default)]
struct Module {
    file: PathBuf,
    /// Paths this module names, resolved to absolute form (from the crate root).
    references: Vec<ModPath>,
    /// `pub use` re-exports: the name it is known by here -> the absolute path it names.
    reexports: HashMap<String, ModPath>,
    /// Child modules declared inline (not files) with their own items; folded into this one.
    inline_children: BTreeSet<String>,
}

/// The file of module `path` under `src`.
fn module_file(src: &Path, path: &[String]) -> Option<PathBuf> {
    if path.is_empty() {
        return ["lib.rs", "main.rs"].iter().map(|f| src.join(f)).find(|p| p.exists());
    }
    let joined: PathBuf = path.iter().collect();
    let flat = src.join(&joined).with_extension("rs");
    let nested = src.join(&joined).join("mod.rs");
    [flat, nested].into_iter().find(|p| p.exists())
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.meta.require_list().is_ok_and(|l| l.tokens.to_string().contains("test")))
}

/// Turns a path's segments into an absolute path, relative to `here`.
fn absolute(here: &[String], segments: &[String]) -> Option<ModPath> {
    let first = segments.first()?;
    match first.as_str() {
        "crate" => Some(segments[1..].to_vec()),
        "self" => Some(here.iter().cloned().chain(segments[1..].iter().cloned()).collect()),
        "super" => {
            let mut base: Vec<String> = here.to_vec();
            let mut rest = segments;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            Some(base.into_iter().chain(rest.iter().cloned()).collect())
        }
        // A 2018-style relative path: a child module of `here`, or (when no
        // module has that name) an outside crate, which resolves to `here` itself.
        _ => Some(here.iter().cloned().chain(segments.iter().cloned()).collect()),
    }
}

struct Collector<'a> {
    here: &'a [String],
    module: &'a mut Module,
    /// Inline modules (`mod x { .. }`) being walked, appended to `here` for `self`/`super`.
    inline: Vec<String>,
}

impl Collector<'_> {
    fn scope(&self) -> Vec<String> {
        self.here.iter().chain(self.inline.iter()).cloned().collect()
    }

    fn note(&mut self, segments: Vec<String>) {
        if let Some(abs) = absolute(&self.scope(), &segments) {
            self.module.references.push(abs);
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree, public: bool) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree, public);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut full = prefix.clone();
                let name = n.ident.to_string();
                if name != "self" {
                    full.push(name.clone());
                }
                let alias = if name == "self" { prefix.last().cloned().unwrap_or_default() } else { name };
                self.record_use(full, alias, public);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                if r.ident != "self" {
                    full.push(r.ident.to_string());
                }
                self.record_use(full, r.rename.to_string(), public);
            }
            syn::UseTree::Glob(_) => self.note(prefix.clone()),
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(prefix, item, public);
                }
            }
        }
    }

    fn record_use(&mut self, full: Vec<String>, alias: String, public: bool) {
        let Some(abs) = absolute(&self.scope(), &full) else { return };
        if public && self.inline.is_empty() {
            self.module.reexports.insert(alias, abs.clone());
        }
        self.module.references.push(abs);
    }
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if is_cfg_test(&m.attrs) {
            return;
        }
        if m.content.is_some() {
            self.module.inline_children.insert(m.ident.to_string());
            self.inline.push(m.ident.to_string());
            syn::visit::visit_item_mod(self, m);
            self.inline.pop();
        }
    }

    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if !is_cfg_test(&f.attrs) {
            syn::visit::visit_item_fn(self, f);
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if is_cfg_test(&u.attrs) {
            return;
        }
        let public = !matches!(u.vis, syn::Visibility::Inherited);
        let mut prefix = Vec::new();
        if u.leading_colon.is_none() {
            self.use_tree(&mut prefix, &u.tree, public);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() > 1 && p.leading_colon.is_none() {
            self.note(segments);
        }
        syn::visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        // Paths inside macro calls (`tracing::info!(.. crate::x ..)`, `routes!(..)`) count too.
        let text = m.tokens.to_string().replace(' ', "");
        for start in ["crate::", "super::", "self::"] {
            for (at, _) in text.match_indices(start) {
                let preceded = text[..at].chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
                if preceded {
                    continue;
                }
                let tail: String =
                    text[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
                let segments: Vec<String> = tail.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect();
                if segments.len() > 1 {
                    self.note(segments);
                }
            }
        }
        syn::visit::visit_macro(self, m);
    }
}

/// Every file module of the crate whose sources are in `src`, by path.
fn load_crate(src: &Path) -> BTreeMap<ModPath, Module> {
    let mut modules = BTreeMap::new();
    let mut pending: Vec<ModPath> = vec![Vec::new()];
    while let Some(path) = pending.pop() {
        let Some(file) = module_file(src, &path) else { continue };
        let text = std::fs::read_to_string(&file).expect("source file readable");
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for item in &ast.items {
            if let syn::Item::Mod(m) = item
                && m.content.is_none()
                && !is_cfg_test(&m.attrs)
            {
                let mut child = path.clone();
                child.push(m.ident.to_string());
                pending.push(child);
            }
        }
        let mut module = Module { file: file.clone(), ..Module::default() };
        let mut collector = Collector { here: &path, module: &mut module, inline: Vec::new() };
        collector.visit_file(&ast);
        modules.insert(path, module);
    }
    modules
}

/// The file module that defines what `path` names: the longest prefix that
/// is a module, with re-exports followed (bounded, in case of a re-export loop).
fn resolve(modules: &BTreeMap<ModPath, Module>, path: &[String]) -> Option<ModPath> {
    let mut path = path.to_vec();
    for _ in 0..16 {
        let owner = (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains_key(p))?;
        let Some(next) = path.get(owner.len()) else { return Some(owner) };
        match modules[&owner].reexports.get(next) {
            Some(target) if target.as_slice() != &path[..=owner.len()] => {
                let mut followed = target.clone();
                followed.extend(path[owner.len() + 1..].iter().cloned());
                path = followed;
            }
            _ => return Some(owner),
        }
    }
    None
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct State<'a> {
        edges: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: HashMap<&'a ModPath, usize>,
        low: HashMap<&'a ModPath, usize>,
        stack: Vec<&'a ModPath>,
        on_stack: BTreeSet<&'a ModPath>,
        found: Vec<Vec<ModPath>>,
    }
    fn connect<'a>(s: &mut State<'a>, v: &'a ModPath) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                connect(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v) {
            connect(&mut state, v);
        }
    }
    state.found
}

fn name(path: &ModPath) -> String {
    if path.is_empty() { "crate".into() } else { path.join("::") }
}

/// The import cycles of one crate, as text (empty: none).
fn crate_cycles(src: &Path) -> Vec<String> {
    let modules = load_crate(src);
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (path, module) in &modules {
        let targets = edges.entry(path.clone()).or_default();
        for reference in &module.references {
            if let Some(target) = resolve(&modules, reference)
                && &target != path
            {
                targets.insert(target);
            }
        }
    }
    cycles(&edges)
        .into_iter()
        .map(|component| {
            let members: BTreeSet<&ModPath> = component.iter().collect();
            let detail: Vec<String> = component
                .iter()
                .map(|m| {
                    let into: Vec<String> = edges[m].iter().filter(|t| members.contains(t)).map(name).collect();
                    let file = modules[m].file.strip_prefix(src).unwrap_or(&modules[m].file);
                    format!("  {} ({}) -> {}", name(m), file.display(), into.join(", "))
                })
                .collect();
            detail.join("\n")
        })
        .collect()
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for krate in ["media", "ingest", "accel", "packager", "appliance"] {
        let src = root.join(krate).join("src");
        for cycle in crate_cycles(&src) {
            found.push(format!("{krate}:\n{cycle}"));
        }
    }
    assert!(found.is_empty(), "import cycles:\n{}", found.join("\n\n"));
}

#[test]
fn the_checker_sees_a_cycle_through_a_reexport() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).expect("mkdir");
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\n").expect("write");
    std::fs::write(src.join("a/mod.rs"), "mod inner;\npub use inner::Thing;\n").expect("write");
    std::fs::write(src.join("a/inner.rs"), "pub struct Thing;\nfn f() { crate::b::g(); }\n").expect("write");
    std::fs::write(src.join("b.rs"), "use crate::a::Thing;\npub fn g() {}\n").expect("write");
    let found = crate_cycles(src);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("a::inner") && found[0].contains("  b "), "{}", found[0]);
    // Without the call back, no cycle.
    std::fs::write(src.join("a/inner.rs"), "pub struct Thing;\n").expect("write");
    assert!(crate_cycles(src).is_empty());
}
