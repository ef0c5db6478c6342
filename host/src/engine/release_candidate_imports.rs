//! Components built against WASI 0.3's release candidate of 2026-03-15 (spin-sdk 6, what `spin
//! new` gives a Spin 4.0.2 user) run on the host's WASI 0.3.0: their top-level imports of
//! `wasi:*@0.3.0-rc-2026-03-15` are renamed `wasi:*@0.3.0` before the component is compiled.
//!
//! Why a rename, and not a second set of bindings delegating to the first (Spin's way, which
//! converts every record, variant and future between two generated copies of the same types):
//! the release candidate's interfaces are, but for their version, word for word those of 0.3.0
//! (`tests/wasi_release_candidate.rs` holds the two WIT texts to that), so one implementation
//! serves both, with the same allowed-hosts rules, timeouts and pooled client. The rename is
//! still checked where it matters: wasmtime type-checks every renamed import against what the
//! host links, so an interface that ever differed would be refused at start, not misread.
//!
//! wasmtime's linker matches versions by semver, which never takes a prerelease as compatible
//! with anything: without the rename, `wasi:http/client@0.3.0-rc-2026-03-15` finds nothing.

use std::borrow::Cow;
use std::collections::BTreeSet;

use anyhow::Context;
use wasmparser::{Chunk, Encoding, Parser, Payload};

/// The release candidate's version, as spin-sdk 6's imports spell it.
use crate::host_api::WASI_0_3_RELEASE_CANDIDATE as RELEASE_CANDIDATE;

/// The release its interfaces are identical to, as this host links it.
const RELEASE: &str = "0.3.0";

/// The component section that holds imports.
const IMPORT_SECTION_ID: u8 = 10;

/// `bytes` with each top-level `wasi:<package>/<interface>@0.3.0-rc-2026-03-15` import renamed
/// to `@0.3.0` when this host provides that; `bytes` unchanged (borrowed) when there is none, or for a core module. An import
/// whose release name the component also imports keeps its name (and the link error names it).
pub(crate) fn bridge_release_candidate_imports(bytes: &[u8]) -> anyhow::Result<Cow<'_, [u8]>> {
    if !contains(bytes, RELEASE_CANDIDATE.as_bytes()) {
        return Ok(Cow::Borrowed(bytes));
    }
    rename_top_level_imports(bytes).context("reading the component's imports")
}

/// The renamed import for `name`, when it is one of the release candidate's WASI imports and
/// this host provides its release (any other keeps its name, so a refusal names what the
/// component imports).
fn release_name(name: &str) -> Option<String> {
    let (interface, version) = name.split_once('@')?;
    let release = format!("{interface}@{RELEASE}");
    (version == RELEASE_CANDIDATE && crate::host_api::provides(&release)).then_some(release)
}

/// Walks the component's own sections (nested components and modules copied as they are),
/// rewriting each import section's names.
fn rename_top_level_imports(bytes: &[u8]) -> anyhow::Result<Cow<'_, [u8]>> {
    let names = top_level_import_names(bytes)?;
    let mut parser = Parser::new(0);
    let mut offset = 0;
    let mut out = Vec::with_capacity(bytes.len());
    let mut renamed = false;
    loop {
        let Chunk::Parsed { consumed, payload } = parser.parse(&bytes[offset..], true)? else {
            anyhow::bail!("the component ends in the middle of a section");
        };
        let start = offset;
        offset += consumed;
        match payload {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } => return Ok(Cow::Borrowed(bytes)),
            Payload::ComponentImportSection(reader) => {
                let contents = reader.range();
                let section = &bytes[contents.start..contents.end];
                let mut rewritten = Vec::with_capacity(section.len());
                let mut copied = 0;
                for item in reader.into_iter_with_offsets() {
                    let (item_offset, import) = item?;
                    let Some(release) = release_name(import.name.name) else {
                        continue;
                    };
                    if names.contains(release.as_str()) {
                        continue;
                    }
                    let name = name_range(section, item_offset - contents.start, import.name.name)?;
                    rewritten.extend_from_slice(&section[copied..name.start]);
                    write_name(&mut rewritten, &release);
                    copied = name.end;
                    renamed = true;
                }
                rewritten.extend_from_slice(&section[copied..]);
                out.push(IMPORT_SECTION_ID);
                write_u32(&mut out, u32::try_from(rewritten.len())?);
                out.extend_from_slice(&rewritten);
            }
            // A nested component or module: its bytes copied whole, its imports its own.
            Payload::ModuleSection {
                unchecked_range, ..
            }
            | Payload::ComponentSection {
                unchecked_range, ..
            } => {
                // The parser has stepped over it already; the bytes may still be missing.
                let nested = bytes
                    .get(start..unchecked_range.end)
                    .context("the component ends inside a nested component or module")?;
                out.extend_from_slice(nested);
                offset = unchecked_range.end;
            }
            Payload::End(_) => {
                out.extend_from_slice(&bytes[start..offset]);
                break;
            }
            _ => out.extend_from_slice(&bytes[start..offset]),
        }
    }
    out.extend_from_slice(&bytes[offset..]);
    Ok(if renamed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(bytes)
    })
}

/// The names of the component's own imports, so a rename never makes two imports of one name.
fn top_level_import_names(bytes: &[u8]) -> anyhow::Result<BTreeSet<&str>> {
    let mut names = BTreeSet::new();
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 1 => {
                for import in reader {
                    names.insert(import?.name.name);
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

/// Where `name`, its length then its bytes, lies in the import that starts at `at` in
/// `section`: after a one-byte tag (`0x00`; `0x01` in older binaries; `0x02` when options
/// follow the name).
fn name_range(section: &[u8], at: usize, name: &str) -> anyhow::Result<std::ops::Range<usize>> {
    let tag = *section
        .get(at)
        .context("an import past its section's end")?;
    anyhow::ensure!(tag <= 2, "an import name with an unknown tag {tag:#x}");
    let (length, leb_bytes) = read_u32(&section[at + 1..])?;
    let start = at + 1 + leb_bytes;
    let end = start + usize::try_from(length)?;
    anyhow::ensure!(
        section.get(start..end) == Some(name.as_bytes()),
        "import `{name}` is not where its section says"
    );
    Ok(at + 1..end)
}

fn write_name(out: &mut Vec<u8>, name: &str) {
    write_u32(out, name.len() as u32);
    out.extend_from_slice(name.as_bytes());
}

/// Unsigned LEB128, as every length in the binary format is written.
fn write_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// An unsigned LEB128 value and how many bytes it took.
fn read_u32(bytes: &[u8]) -> anyhow::Result<(u32, usize)> {
    let mut value = 0u32;
    for (index, byte) in bytes.iter().take(5).enumerate() {
        value |= u32::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok((value, index + 1));
        }
    }
    anyhow::bail!("a length that does not end")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imports(bytes: &[u8]) -> Vec<String> {
        top_level_import_names(bytes)
            .unwrap()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    fn valid(bytes: &[u8]) {
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(bytes)
            .expect("the renamed component validates");
    }

    #[test]
    fn release_candidate_wasi_imports_are_renamed_and_nothing_else_is() {
        let component = wat::parse_str(
            r#"(component
                (import "wasi:clocks/types@0.3.0-rc-2026-03-15" (instance
                    (type $duration u64)
                    (export "duration" (type (eq $duration)))))
                (import "wasi:http/types@0.3.0-rc-2026-03-15" (instance
                    (export "fields" (type (sub resource)))))
                (import "spin:redis/redis@3.0.0" (instance))
                (import "other:pkg/iface@0.3.0-rc-2026-03-15" (instance))
                (import "wasi:unknown/iface@0.3.0-rc-2026-03-15" (instance))
                (component $inner
                    (import "wasi:http/types@0.3.0-rc-2026-03-15" (instance)))
                (core module $m (func (export "f")))
            )"#,
        )
        .unwrap();
        let renamed = bridge_release_candidate_imports(&component).unwrap();
        assert!(matches!(renamed, Cow::Owned(_)));
        valid(&renamed);
        assert_eq!(
            imports(&renamed),
            [
                "other:pkg/iface@0.3.0-rc-2026-03-15",
                "spin:redis/redis@3.0.0",
                "wasi:clocks/types@0.3.0",
                "wasi:http/types@0.3.0",
                "wasi:unknown/iface@0.3.0-rc-2026-03-15",
            ]
        );
        // The nested component's own import is its business (it is instantiated by the outer
        // one, not linked): still there, byte for byte.
        assert!(contains(&renamed, b"wasi:http/types@0.3.0-rc-2026-03-15"));
    }

    #[test]
    fn an_import_whose_release_is_imported_too_keeps_its_name() {
        let component = wat::parse_str(
            r#"(component
                (import "wasi:http/client@0.3.0-rc-2026-03-15" (instance))
                (import "wasi:http/client@0.3.0" (instance))
                (import "wasi:random/random@0.3.0-rc-2026-03-15" (instance))
            )"#,
        )
        .unwrap();
        let renamed = bridge_release_candidate_imports(&component).unwrap();
        valid(&renamed);
        assert_eq!(
            imports(&renamed),
            [
                "wasi:http/client@0.3.0",
                "wasi:http/client@0.3.0-rc-2026-03-15",
                "wasi:random/random@0.3.0",
            ]
        );
    }

    #[test]
    fn components_without_release_candidate_imports_are_not_copied() {
        let component =
            wat::parse_str(r#"(component (import "wasi:http/client@0.3.0" (instance)))"#).unwrap();
        assert!(matches!(
            bridge_release_candidate_imports(&component).unwrap(),
            Cow::Borrowed(_)
        ));
        let module = wat::parse_str(
            r#"(module (import "wasi:http/client@0.3.0-rc-2026-03-15" "f" (func)))"#,
        )
        .unwrap();
        assert!(matches!(
            bridge_release_candidate_imports(&module).unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_long_name_section_keeps_its_length_right() {
        // Enough imports that the section's length takes two LEB bytes before and after.
        let imports_text: String = (0..40)
            .map(|index| {
                format!(r#"(import "wasi:http/iface{index}@0.3.0-rc-2026-03-15" (instance))"#)
            })
            .collect();
        let component = wat::parse_str(format!("(component {imports_text})")).unwrap();
        let renamed = bridge_release_candidate_imports(&component).unwrap();
        valid(&renamed);
        let names = imports(&renamed);
        assert_eq!(names.len(), 40);
        assert!(
            names.iter().all(|name| name.ends_with("@0.3.0")),
            "{names:?}"
        );
    }

    #[test]
    fn truncated_bytes_are_an_error_not_a_panic() {
        let component = wat::parse_str(
            r#"(component
                (component (import "wasi:http/types@0.3.0-rc-2026-03-15" (instance)))
                (core module (func (export "f")))
                (import "wasi:http/types@0.3.0-rc-2026-03-15" (instance)))"#,
        )
        .unwrap();
        for end in 0..component.len() {
            // Cut anywhere, it is refused (or, before the name is whole, left alone).
            let result = bridge_release_candidate_imports(&component[..end]);
            assert!(
                !matches!(result, Ok(Cow::Owned(_))),
                "{end} bytes of {} renamed",
                component.len()
            );
        }
    }
}
