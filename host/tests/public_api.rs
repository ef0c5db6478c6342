//! The public API of the crates users build against, the host and the SDK, listed and kept
//! under test: every item a user can name (public modules, their public items, the fields,
//! variants and methods of public types, and the crate root's re-exports), one per line, compared
//! with `api/<crate>.txt`. A change to the API is then a change to that file, seen in review.
//! Items hidden from the docs (`#[doc(hidden)]`: the benchmark's `internals`, the code the SDK's
//! macros generate against) are not part of the API and are left out. (The macro crate is
//! pinned by the SDK to its own version, and its attributes' syntax is tested by its UI tests.)
//!
//! After an intended change, `PUBLIC_API_BLESS=1 cargo test -p spin-trigger-host --test
//! public_api` rewrites the listings.
//!
//! Between releases: `api/released/<crate>-<version>.txt` is the API a release published
//! (`cargo xtask release` writes it). Against the newest one, a removed or changed item needs a
//! version incompatible with it (0.x: the next minor; then the next major), an added item any
//! higher version, so a signature changed without a version bump fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use quote::ToTokens;
use syn::{Attribute, Fields, ImplItem, Item, TraitItem, Visibility};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the host crate sits in the workspace")
        .to_path_buf()
}

/// The crates whose API is listed: package name, the name code uses, and the source directory
/// (from the workspace root).
const LISTED: [(&str, &str, &str); 2] = [
    ("spin-trigger-host", "spin_trigger_host", "host/src"),
    ("spin-trigger-sdk", "spin_trigger_sdk", "sdk/src"),
];

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
    fn load(src: &Path) -> Self {
        let mut modules = BTreeMap::new();
        load_module(&src.join("lib.rs"), src, String::new(), true, &mut modules);
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

/// Lists the public items of every module a user of the crate (named `ident` in code, its
/// source in `src`) can name.
fn listing(ident: &str, src: &Path) -> String {
    let krate = Crate::load(src);
    let mut out = BTreeSet::new();
    for (module, contents) in &krate.modules {
        if !contents.public {
            continue;
        }
        let path = if module.is_empty() {
            ident.to_owned()
        } else {
            format!("{ident}::{module}")
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

/// The listing of the workspace's crate `name`.
fn current_listing(name: &str) -> String {
    let (_, ident, src) = LISTED
        .iter()
        .find(|(package, _, _)| *package == name)
        .expect("a listed crate");
    listing(ident, &workspace_root().join(src))
}

/// The lines only in `before` (removed or changed items) and only in `after` (added ones).
fn difference<'a>(before: &'a str, after: &'a str) -> (Vec<&'a str>, Vec<&'a str>) {
    let before_lines: BTreeSet<&str> = before.lines().collect();
    let after_lines: BTreeSet<&str> = after.lines().collect();
    (
        before_lines.difference(&after_lines).copied().collect(),
        after_lines.difference(&before_lines).copied().collect(),
    )
}

#[test]
fn the_public_api_is_the_listed_one() {
    for (name, _, _) in LISTED {
        let fixture = workspace_root().join(format!("api/{name}.txt"));
        let actual = current_listing(name);
        if std::env::var_os("PUBLIC_API_BLESS").is_some() {
            std::fs::write(&fixture, &actual).expect("writing the public API listing");
            continue;
        }
        let expected = std::fs::read_to_string(&fixture).unwrap_or_default();
        let (removed, added) = difference(&expected, &actual);
        assert!(
            removed.is_empty() && added.is_empty(),
            "the public API of {name} changed; if that is intended, rerun with \
             PUBLIC_API_BLESS=1 and commit api/{name}.txt\nadded:\n{added:#?}\nremoved:\n{removed:#?}"
        );
    }
}

/// `major.minor.patch` as numbers.
fn version(text: &str) -> [u64; 3] {
    let parts: Vec<u64> = text
        .split('.')
        .map(|part| {
            part.parse()
                .unwrap_or_else(|_| panic!("`{text}` is not a version"))
        })
        .collect();
    parts
        .try_into()
        .unwrap_or_else(|_| panic!("`{text}` is not major.minor.patch"))
}

/// Whether Cargo takes `next` for a `^released` requirement.
fn compatible(released: [u64; 3], next: [u64; 3]) -> bool {
    match released {
        [0, 0, patch] => next == [0, 0, patch],
        [0, minor, _] => next[0] == 0 && next[1] == minor,
        [major, _, _] => next[0] == major,
    }
}

/// Checks the API `current` of `name` at version `current_version` against the API
/// `released` published at `released_version`; the error says what changed and what version
/// it needs.
fn check_bump(
    name: &str,
    (released_version, released): (&str, &str),
    (current_version, current): (&str, &str),
) -> Result<(), String> {
    let (removed, added) = difference(released, current);
    let (from, to) = (version(released_version), version(current_version));
    let needed = match from {
        [0, 0, patch] => format!("0.0.{}", patch + 1),
        [0, minor, _] => format!("0.{}.0", minor + 1),
        [major, _, _] => format!("{}.0.0", major + 1),
    };
    if !removed.is_empty() && compatible(from, to) {
        return Err(format!(
            "{name} {current_version} removes or changes items of the API {released_version} \
             published, which Cargo would take as compatible: bump the version to {needed} \
             (`cargo xtask release {needed}` sets it everywhere) or keep the items\n\
             removed or changed:\n{removed:#?}\nadded:\n{added:#?}"
        ));
    }
    if !added.is_empty() && to <= from {
        return Err(format!(
            "{name} {current_version} adds items to the API {released_version} published under \
             the same version: bump the version\nadded:\n{added:#?}"
        ));
    }
    Ok(())
}

/// The newest `api/released/<name>-<version>.txt` not above `version`.
fn newest_release(name: &str, current: &str) -> Option<(String, String)> {
    let dir = workspace_root().join("api/released");
    let mut releases: Vec<([u64; 3], String, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("listing {}: {error}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let file = path.file_name()?.to_str()?.to_owned();
            let released = file
                .strip_prefix(&format!("{name}-"))?
                .strip_suffix(".txt")?;
            if !released.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            Some((version(released), released.to_owned(), path))
        })
        .filter(|(released, _, _)| *released <= version(current))
        .collect();
    releases.sort();
    let (_, released, path) = releases.pop()?;
    Some((released, std::fs::read_to_string(path).unwrap()))
}

#[test]
fn a_change_to_a_released_api_comes_with_a_version_bump() {
    let current_version = env!("CARGO_PKG_VERSION");
    for (name, _, _) in LISTED {
        let (released_version, released) =
            newest_release(name, current_version).unwrap_or_else(|| {
                panic!("api/released has no release of {name} up to {current_version}")
            });
        let current = current_listing(name);
        if let Err(error) = check_bump(
            name,
            (&released_version, &released),
            (current_version, &current),
        ) {
            panic!("{error}");
        }
    }
}

/// The check at work: an SDK function's signature changed (in a copy of the SDK's source)
/// fails it under the same version and under a patch bump, and passes with the minor bump a
/// 0.x crate needs; an added function needs a bump of any kind.
#[test]
fn an_sdk_signature_changed_without_a_version_bump_fails_the_check() {
    let copy = tempfile::tempdir().unwrap();
    let src = copy.path().join("src");
    copy_dir(&workspace_root().join("sdk/src"), &src);
    let variables = src.join("variables.rs");
    let text = std::fs::read_to_string(&variables).unwrap();
    let original = "pub fn get(name: &str)";
    assert!(
        text.contains(original),
        "the SDK has variables::get: {text}"
    );
    std::fs::write(
        &variables,
        text.replace(original, "pub fn get(name: &str, default: Option<&str>)"),
    )
    .unwrap();
    let released = current_listing("spin-trigger-sdk");
    let changed = listing("spin_trigger_sdk", &src);
    let check = |version: &str| {
        check_bump(
            "spin-trigger-sdk",
            ("0.1.0", &released),
            (version, &changed),
        )
    };
    let error = check("0.1.0").expect_err("a changed signature under the same version");
    assert!(
        error.contains("spin_trigger_sdk::variables::get") && error.contains("0.2.0"),
        "{error}"
    );
    assert!(check("0.1.1").is_err(), "a patch bump is not enough");
    check("0.2.0").expect("a minor bump is enough for 0.x");

    std::fs::write(
        &variables,
        format!("{text}\n/// Added.\npub fn added() {{}}\n"),
    )
    .unwrap();
    let added = listing("spin_trigger_sdk", &src);
    assert!(
        check_bump("spin-trigger-sdk", ("0.1.0", &released), ("0.1.0", &added)).is_err(),
        "an addition under the same version"
    );
    check_bump("spin-trigger-sdk", ("0.1.0", &released), ("0.1.1", &added))
        .expect("an addition with a patch bump");
}

/// Every `.wit` file under `dir`, with the package it declares.
fn wit_packages(dir: &Path, found: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            wit_packages(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "wit") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Some(package) = text
                .lines()
                .find_map(|line| line.trim().strip_prefix("package "))
            {
                found.push((package.trim_end_matches(';').trim().to_owned(), path));
            }
        }
    }
}

/// A world published at a version never changes: each of this project's WIT packages recorded
/// in `api/released/wit/` (a release records the ones it ships) is still in `wit/`, word for
/// word. A change is a new version beside it, and the host keeps running the old one.
#[test]
fn a_released_wit_package_never_changes() {
    let mut released = Vec::new();
    wit_packages(&workspace_root().join("api/released/wit"), &mut released);
    assert!(!released.is_empty(), "api/released/wit records no package");
    let mut current = Vec::new();
    wit_packages(&workspace_root().join("wit"), &mut current);
    for (package, recorded) in released {
        let file = current
            .iter()
            .find(|(name, _)| *name == package)
            .map(|(_, path)| path)
            .unwrap_or_else(|| panic!("the released WIT package {package} is gone from wit/"));
        assert_eq!(
            std::fs::read_to_string(file).unwrap(),
            std::fs::read_to_string(&recorded).unwrap(),
            "{} changed the released package {package}: a published world never changes; \
             write the change as a new version beside it (wit/deps/<package>@<next>/)",
            file.display()
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// The model can only be had validated: no public field of `App`, and its parts cannot be
/// built outside the crate.
#[test]
fn an_app_exists_only_validated() {
    let listing = current_listing("spin-trigger-host");
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
