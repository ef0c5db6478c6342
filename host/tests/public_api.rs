//! The host crate's public API, listed and kept under test: every item an embedder can name
//! (public modules, their public items, the fields, variants and methods of public types, and
//! the crate root's re-exports), one per line, compared with `tests/fixtures/public-api.txt`.
//! A change to the API is then a change to that file, seen in review. Items hidden from the docs
//! (`#[doc(hidden)]`: the benchmark's `internals`) are not part of the API and are left out.
//!
//! After an intended change, `PUBLIC_API_BLESS=1 cargo test -p spin-trigger-host --test
//! public_api` rewrites the listing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use quote::ToTokens;
use syn::{Attribute, Fields, ImplItem, Item, TraitItem, Visibility};

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn is_pub(visibility: &Visibility) -> bool {
    matches!(visibility, Visibility::Public(_))
}

fn hidden(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("doc") && attr.to_token_stream().to_string().contains("hidden")
    }) || attrs.iter().any(|attr| attr.path().is_ident("cfg"))
}

fn non_exhaustive(attrs: &[Attribute]) -> &'static str {
    if attrs
        .iter()
        .any(|attr| attr.path().is_ident("non_exhaustive"))
    {
        "#[non_exhaustive] "
    } else {
        ""
    }
}

/// Tokens as one line, with the spaces `quote` puts around punctuation taken out where they
/// read oddly.
fn text(tokens: impl ToTokens) -> String {
    let text = tokens.to_token_stream().to_string();
    [
        (" :: ", "::"),
        (":: ", "::"),
        (" ,", ","),
        ("< ", "<"),
        (" >", ">"),
        ("& ", "&"),
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
        (" ;", ";"),
        (" <", "<"),
        (" : ", ": "),
        (" !", "!"),
        ("' ", "'"),
    ]
    .iter()
    .fold(text, |text, (from, to)| text.replace(from, to))
}

/// Every module of the crate, by path (`""` for the root, `engine::options`), with its items
/// and whether an embedder can name it.
struct Crate {
    modules: BTreeMap<String, Module>,
}

struct Module {
    items: Vec<Item>,
    public: bool,
}

impl Crate {
    fn load() -> Self {
        let mut modules = BTreeMap::new();
        let src = src_dir();
        load_module(&src.join("lib.rs"), &src, String::new(), true, &mut modules);
        Crate { modules }
    }

    /// The item `name` of module `module`, following `use` re-exports to where it is defined:
    /// its module and the item.
    fn resolve(&self, module: &str, name: &str) -> Option<(String, &Item)> {
        let items = &self.modules.get(module)?.items;
        for item in items {
            if item_name(item).as_deref() == Some(name) {
                return Some((module.to_owned(), item));
            }
        }
        for item in items {
            if let Item::Use(item) = item {
                for (path, leaf, alias) in use_leaves(&item.tree, Vec::new()) {
                    if alias == name {
                        let target = absolute(module, &path);
                        return self.resolve(&target, &leaf);
                    }
                }
            }
        }
        None
    }

    /// Every inherent method and trait impl of the type `name`, wherever in the crate it is.
    fn impls_of(&self, name: &str) -> Vec<&syn::ItemImpl> {
        let mut impls = Vec::new();
        for module in self.modules.values() {
            for item in &module.items {
                if let Item::Impl(item) = item
                    && let syn::Type::Path(path) = &*item.self_ty
                    && path
                        .path
                        .segments
                        .last()
                        .is_some_and(|last| last.ident == name)
                    && !hidden(&item.attrs)
                {
                    impls.push(item);
                }
            }
        }
        impls
    }
}

fn load_module(
    file: &Path,
    dir: &Path,
    path: String,
    public: bool,
    modules: &mut BTreeMap<String, Module>,
) {
    let source = std::fs::read_to_string(file)
        .unwrap_or_else(|error| panic!("reading {}: {error}", file.display()));
    let parsed = syn::parse_file(&source)
        .unwrap_or_else(|error| panic!("parsing {}: {error}", file.display()));
    load_items(parsed.items, dir, path, public, modules);
}

fn load_items(
    items: Vec<Item>,
    dir: &Path,
    path: String,
    public: bool,
    modules: &mut BTreeMap<String, Module>,
) {
    for item in &items {
        let Item::Mod(module) = item else { continue };
        if module.attrs.iter().any(|attr| attr.path().is_ident("cfg")) {
            continue;
        }
        let name = module.ident.to_string();
        let child = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}::{name}")
        };
        let child_public = public && is_pub(&module.vis) && !hidden(&module.attrs);
        match &module.content {
            Some((_, items)) => load_items(
                items.clone(),
                &dir.join(&name),
                child,
                child_public,
                modules,
            ),
            None => {
                let file = dir.join(format!("{name}.rs"));
                let file = if file.exists() {
                    file
                } else {
                    dir.join(&name).join("mod.rs")
                };
                load_module(&file, &dir.join(&name), child, child_public, modules);
            }
        }
    }
    modules.insert(path, Module { items, public });
}

fn item_name(item: &Item) -> Option<String> {
    Some(match item {
        Item::Struct(item) => item.ident.to_string(),
        Item::Enum(item) => item.ident.to_string(),
        Item::Fn(item) => item.sig.ident.to_string(),
        Item::Trait(item) => item.ident.to_string(),
        Item::Const(item) => item.ident.to_string(),
        Item::Static(item) => item.ident.to_string(),
        Item::Type(item) => item.ident.to_string(),
        Item::Mod(item) => item.ident.to_string(),
        _ => return None,
    })
}

/// Each name a `use` tree brings in: the module path it comes from, its name there, and the
/// name it is known by here.
fn use_leaves(tree: &syn::UseTree, prefix: Vec<String>) -> Vec<(Vec<String>, String, String)> {
    match tree {
        syn::UseTree::Path(path) => {
            let mut prefix = prefix;
            prefix.push(path.ident.to_string());
            use_leaves(&path.tree, prefix)
        }
        syn::UseTree::Name(name) if name.ident == "self" => {
            let mut prefix = prefix;
            let leaf = prefix.pop().unwrap_or_default();
            vec![(prefix, leaf.clone(), leaf)]
        }
        syn::UseTree::Name(name) => {
            vec![(prefix, name.ident.to_string(), name.ident.to_string())]
        }
        syn::UseTree::Rename(rename) => {
            vec![(prefix, rename.ident.to_string(), rename.rename.to_string())]
        }
        syn::UseTree::Group(group) => group
            .items
            .iter()
            .flat_map(|tree| use_leaves(tree, prefix.clone()))
            .collect(),
        syn::UseTree::Glob(_) => Vec::new(),
    }
}

/// A `use` path written in `module`, as a module path from the crate root.
fn absolute(module: &str, path: &[String]) -> String {
    let mut segments: Vec<String> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(str::to_owned).collect()
    };
    let mut path = path.iter().peekable();
    match path.peek().map(|segment| segment.as_str()) {
        Some("crate") => {
            segments.clear();
            path.next();
        }
        Some("self") => {
            path.next();
        }
        _ => {}
    }
    while path.peek().is_some_and(|segment| *segment == "super") {
        segments.pop();
        path.next();
    }
    segments.extend(path.cloned());
    segments.join("::")
}

/// Lists the public items of every module an embedder can name.
fn listing() -> String {
    let krate = Crate::load();
    let mut out = BTreeSet::new();
    for (module, contents) in &krate.modules {
        if !contents.public {
            continue;
        }
        let path = if module.is_empty() {
            "spin_trigger_host".to_owned()
        } else {
            format!("spin_trigger_host::{module}")
        };
        if !module.is_empty() {
            out.insert(format!("pub mod {path}"));
        }
        for item in &contents.items {
            match item {
                Item::Use(item) if is_pub(&item.vis) && !hidden(&item.attrs) => {
                    for (from, leaf, alias) in use_leaves(&item.tree, Vec::new()) {
                        let target = absolute(module, &from);
                        // A public module's own item is listed where it is.
                        if krate.modules.get(&target).is_some_and(|m| m.public) {
                            out.insert(format!("pub use {path}::{alias} = {target}::{leaf}"));
                            continue;
                        }
                        match krate.resolve(&target, &leaf) {
                            Some((_, item)) => {
                                list_item(&krate, item, &path, Some(&alias), &mut out)
                            }
                            None => {
                                out.insert(format!("pub use {path}::{alias} (external)"));
                            }
                        }
                    }
                }
                item => list_item(&krate, item, &path, None, &mut out),
            }
        }
    }
    out.into_iter().collect::<Vec<_>>().join("\n") + "\n"
}

/// One public item (and, for a type, its public fields, variants and methods) at `path`,
/// named `alias` when re-exported under another name.
fn list_item(
    krate: &Crate,
    item: &Item,
    path: &str,
    alias: Option<&str>,
    out: &mut BTreeSet<String>,
) {
    let named = |ident: &syn::Ident| alias.map_or_else(|| ident.to_string(), str::to_owned);
    let reexported = alias.is_some();
    match item {
        Item::Fn(item) if (reexported || is_pub(&item.vis)) && !hidden(&item.attrs) => {
            out.insert(format!("pub fn {path}::{}", signature(&item.sig)));
        }
        Item::Const(item) if (reexported || is_pub(&item.vis)) && !hidden(&item.attrs) => {
            let ty = text(&item.ty);
            out.insert(format!("pub const {path}::{}: {ty}", named(&item.ident)));
        }
        Item::Type(item) if (reexported || is_pub(&item.vis)) && !hidden(&item.attrs) => {
            let ty = text(&item.ty);
            out.insert(format!("pub type {path}::{} = {ty}", named(&item.ident)));
        }
        Item::Struct(item) if (reexported || is_pub(&item.vis)) && !hidden(&item.attrs) => {
            let name = format!("{path}::{}", named(&item.ident));
            out.insert(format!(
                "{}pub struct {name}{}",
                non_exhaustive(&item.attrs),
                text(&item.generics)
            ));
            list_fields(&item.fields, &name, out);
            list_impls(krate, &item.ident.to_string(), &name, out);
        }
        Item::Enum(item) if (reexported || is_pub(&item.vis)) && !hidden(&item.attrs) => {
            let name = format!("{path}::{}", named(&item.ident));
            out.insert(format!("{}pub enum {name}", non_exhaustive(&item.attrs)));
            for variant in &item.variants {
                out.insert(format!("{name}::{}", variant.ident));
                list_fields(&variant.fields, &format!("{name}::{}", variant.ident), out);
            }
            list_impls(krate, &item.ident.to_string(), &name, out);
        }
        Item::Trait(item) if (reexported || is_pub(&item.vis)) && !hidden(&item.attrs) => {
            let name = format!("{path}::{}", named(&item.ident));
            out.insert(format!("pub trait {name}"));
            for trait_item in &item.items {
                match trait_item {
                    TraitItem::Fn(method) => {
                        out.insert(format!("{name}::{}", signature(&method.sig)));
                    }
                    TraitItem::Type(ty) => {
                        out.insert(format!("{name}::type {}", ty.ident));
                    }
                    TraitItem::Const(constant) => {
                        out.insert(format!("{name}::const {}", constant.ident));
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// A type's public methods, and the traits it implements.
fn list_impls(krate: &Crate, type_name: &str, name: &str, out: &mut BTreeSet<String>) {
    for item in krate.impls_of(type_name) {
        if let Some((_, trait_path, _)) = &item.trait_ {
            out.insert(format!("impl {} for {name}", text(trait_path)));
            continue;
        }
        for impl_item in &item.items {
            if let ImplItem::Fn(method) = impl_item
                && is_pub(&method.vis)
                && !hidden(&method.attrs)
            {
                out.insert(format!("{name}::{}", signature(&method.sig)));
            }
        }
    }
}

fn list_fields(fields: &Fields, name: &str, out: &mut BTreeSet<String>) {
    for (index, field) in fields.iter().enumerate() {
        if !is_pub(&field.vis) {
            continue;
        }
        let field_name = field
            .ident
            .as_ref()
            .map_or_else(|| index.to_string(), ToString::to_string);
        out.insert(format!("{name}.{field_name}: {}", text(&field.ty)));
    }
}

fn signature(sig: &syn::Signature) -> String {
    let mut sig = sig.clone();
    // Parameter names are not part of the API.
    for input in &mut sig.inputs {
        if let syn::FnArg::Typed(typed) = input {
            *typed.pat = syn::parse_quote!(_);
        }
    }
    text(&sig).trim_start_matches("fn ").to_owned()
}

#[test]
fn the_public_api_is_the_listed_one() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/public-api.txt");
    let actual = listing();
    if std::env::var_os("PUBLIC_API_BLESS").is_some() {
        std::fs::write(&fixture, &actual).expect("writing the public API listing");
        return;
    }
    let expected = std::fs::read_to_string(&fixture).unwrap_or_default();
    if actual != expected {
        let expected_lines: BTreeSet<&str> = expected.lines().collect();
        let actual_lines: BTreeSet<&str> = actual.lines().collect();
        let added: Vec<&&str> = actual_lines.difference(&expected_lines).collect();
        let removed: Vec<&&str> = expected_lines.difference(&actual_lines).collect();
        panic!(
            "the public API changed; if that is intended, rerun with PUBLIC_API_BLESS=1 and \
             commit tests/fixtures/public-api.txt\nadded:\n{added:#?}\nremoved:\n{removed:#?}"
        );
    }
}

/// The model can only be had validated: no public field of `App`, and its parts cannot be
/// built outside the crate.
#[test]
fn an_app_exists_only_validated() {
    let listing = listing();
    assert!(
        !listing
            .lines()
            .any(|line| line.starts_with("spin_trigger_host::app::App.")),
        "App has a public field:\n{listing}"
    );
    for part in ["Component", "Trigger"] {
        assert!(
            listing.contains(&format!(
                "#[non_exhaustive] pub struct spin_trigger_host::app::{part}"
            )),
            "{part} can be built outside the crate:\n{listing}"
        );
    }
}
