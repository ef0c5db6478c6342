//! Host APIs a guest may import, one module per interface, plus the bindings they implement.
//!
//! Each interface comes in the versions Spin defines: `fermyon:spin/*@2.0.0` (what our SDK and
//! Spin's timer example use) and `spin:*/*@3.0.0` (what spin-sdk 6 and later use, with `async
//! func`s). Both versions of an interface share one implementation.

pub mod key_value;
pub(crate) mod otel;
pub mod outbound_http;
pub mod outbound_redis;
pub mod sqlite;
pub mod state;
pub mod variables;

pub use state::InstanceState;

use anyhow::Context;
use wasmtime::component::Linker;

/// Links WASI 0.2 and the Spin host APIs into `linker`: the `fermyon:spin/*@2.0.0` interfaces
/// always, Spin's `async func` v3 interfaces when the engine is `concurrent` (only an engine
/// with concurrency support can host them). Adding an API is its module and a line here.
pub(crate) fn add_to_linker(
    linker: &mut Linker<InstanceState>,
    concurrent: bool,
) -> anyhow::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)
        .map_err(anyhow::Error::from)
        .context("linking WASI p2")?;
    bindings::HostImports::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |state| {
        state
    })
    .map_err(anyhow::Error::from)
    .context("linking the host APIs")?;
    if concurrent {
        spin3_bindings::Spin3Imports::add_to_linker::<_, Spin3>(linker, |state| state)
            .map_err(anyhow::Error::from)
            .context("linking Spin's v3 host APIs")?;
    }
    Ok(())
}

/// Whether a component importing `imports` needs [`add_http_to_linker`]'s interfaces.
pub(crate) fn needs_http(mut imports: impl Iterator<Item = String>) -> bool {
    imports.any(|import| import.starts_with("wasi:http/") || import.ends_with("@0.3.0"))
}

/// Adds outbound HTTP to a linker [`add_to_linker`] made: `wasi:http` 0.2, and for a
/// `concurrent` engine WASI 0.3.0 with `wasi:http/client` (spin-sdk 7). A linker of its own,
/// used only for components that import them: linking these costs the process some 3 MiB.
pub(crate) fn add_http_to_linker(
    linker: &mut Linker<InstanceState>,
    concurrent: bool,
) -> anyhow::Result<()> {
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
        .map_err(anyhow::Error::from)
        .context("linking wasi:http")?;
    if concurrent {
        wasmtime_wasi::p3::add_to_linker(linker)
            .map_err(anyhow::Error::from)
            .context("linking WASI 0.3")?;
        wasmtime_wasi_http::p3::add_to_linker(linker)
            .map_err(anyhow::Error::from)
            .context("linking wasi:http 0.3")?;
    }
    Ok(())
}

/// Host bindings for one of this project's own worlds (`spin-trigger:sdk/...`): async
/// exports, with the Spin 2.0.0 variables and outbound Redis imports they all share taken from
/// [`bindings`], so the triggers' instances link against one implementation.
macro_rules! our_world_bindings {
    ($world:tt) => {
        wasmtime::component::bindgen!({
            world: $world,
            path: "wit",
            exports: { default: async },
            with: {
                "fermyon:spin/variables@2.0.0": crate::host_api::bindings::fermyon::spin2_0_0::variables,
                "fermyon:spin/redis@2.0.0": crate::host_api::bindings::fermyon::spin2_0_0::redis,
            },
        });
    };
}
pub(crate) use our_world_bindings;

/// Host-side bindings for the imports every world shares, generated once.
pub mod bindings {
    wasmtime::component::bindgen!({
        world: "spin-trigger:sdk/host-imports@0.1.0",
        path: "wit",
        // Redis and the stores do I/O: async, so a slow server or disk never blocks a runtime
        // thread.
        imports: {
            "fermyon:spin/redis": async,
            "fermyon:spin/key-value": async,
            "fermyon:spin/sqlite": async,
            "wasi:keyvalue/store": async,
            "wasi:keyvalue/atomics": async,
            "wasi:keyvalue/batch": async,
        },
        with: {
            "fermyon:spin/redis.connection": super::outbound_redis::OutboundConnection,
            "fermyon:spin/key-value.store": super::key_value::OpenStore,
            "fermyon:spin/sqlite.connection": crate::stores::sqlite_database::DatabaseConnection,
            "wasi:keyvalue/store.bucket": super::key_value::OpenStore,
            "wasi:keyvalue/atomics.cas": super::key_value::Cas,
        },
    });
}

/// Host-side bindings for Spin's v3 interfaces. Their functions are `async func`s, which
/// wasmtime hands an `Accessor` to the store rather than `&mut self`; they are implemented on
/// [`Spin3`].
pub mod spin3_bindings {
    wasmtime::component::bindgen!({
        world: "spin-trigger:sdk/spin3-imports@0.1.0",
        path: "wit",
        // Making a stream or future for the guest can fail (a full resource table): these
        // functions may trap.
        imports: {
            "spin:key-value/key-value": trappable,
            "spin:sqlite/sqlite": trappable,
        },
        with: {
            "spin:redis/redis.connection": super::outbound_redis::OutboundConnection,
            "spin:key-value/key-value.store": super::key_value::OpenStore,
            "spin:sqlite/sqlite.connection": crate::stores::sqlite_database::DatabaseConnection,
        },
    });
}

/// The `HasData` marker the v3 interfaces are linked with: their host functions see the
/// instance's [`InstanceState`].
pub struct Spin3;

impl wasmtime::component::HasData for Spin3 {
    type Data<'a> = &'a mut InstanceState;
}

/// The interfaces this host links, besides WASI, by their full import names.
pub const SPIN_INTERFACES: &[&str] = &[
    "fermyon:spin/variables@2.0.0",
    "fermyon:spin/redis@2.0.0",
    "fermyon:spin/key-value@2.0.0",
    "fermyon:spin/sqlite@2.0.0",
    "spin:variables/variables@3.0.0",
    "spin:redis/redis@3.0.0",
    "spin:key-value/key-value@3.0.0",
    "spin:sqlite/sqlite@3.1.0",
    "wasi:keyvalue/store@0.2.0-draft2",
    "wasi:keyvalue/atomics@0.2.0-draft2",
    "wasi:keyvalue/batch@0.2.0-draft2",
];

/// WASI 0.3's release candidate of 2026-03-15, as spin-sdk 6's imports spell it: served by
/// the WASI 0.3.0 interfaces, renamed at load (`engine/release_candidate_imports.rs`).
pub(crate) const WASI_0_3_RELEASE_CANDIDATE: &str = "0.3.0-rc-2026-03-15";

/// The WASI 0.2 packages wasmtime-wasi links, every interface of each (any 0.2.x version).
pub const WASI_PACKAGES: &[&str] = &[
    "wasi:cli",
    "wasi:clocks",
    "wasi:filesystem",
    "wasi:http",
    "wasi:io",
    "wasi:random",
    "wasi:sockets",
];

/// The WASI 0.3.0 packages linked for components that use component-model async (spin-sdk 7's
/// outbound HTTP needs `wasi:http/client` and the types it shares with these).
pub const WASI_0_3_PACKAGES: &[&str] = &[
    "wasi:cli",
    "wasi:clocks",
    "wasi:filesystem",
    "wasi:http",
    "wasi:random",
    "wasi:sockets",
];

/// Whether an import (as a component names it, e.g. `wasi:cli/stdout@0.2.6`) is one this host
/// links. Used to explain a failed link, never to decide one: wasmtime's type check decides.
pub fn provides(import: &str) -> bool {
    if SPIN_INTERFACES.contains(&import) {
        return true;
    }
    let Some((package, rest)) = import.split_once('/') else {
        return false;
    };
    let Some((_, version)) = rest.split_once('@') else {
        return false;
    };
    (WASI_PACKAGES.contains(&package) && version.starts_with("0.2."))
        || (WASI_0_3_PACKAGES.contains(&package) && version == "0.3.0")
}

/// What this host links, for error messages and `--help`.
pub fn provided_summary() -> String {
    format!(
        "{}, WASI 0.2 ({}), and to components using component-model async WASI 0.3.0 ({}; also as \
         its release candidate {}, which spin-sdk 6 imports); with `--experimental-wasi-otel`, {}",
        SPIN_INTERFACES.join(", "),
        WASI_PACKAGES.join(", "),
        WASI_0_3_PACKAGES.join(", "),
        WASI_0_3_RELEASE_CANDIDATE,
        otel::LINKED_INTERFACES[0]
    )
}

#[cfg(test)]
mod tests {
    use super::provides;

    #[test]
    fn provides_spin_interfaces_by_exact_version_and_wasi_0_2_by_package() {
        assert!(provides("spin:redis/redis@3.0.0"));
        assert!(provides("fermyon:spin/variables@2.0.0"));
        assert!(provides("wasi:cli/stdout@0.2.6"));
        assert!(provides("wasi:io/streams@0.2.0"));
        assert!(provides("spin:key-value/key-value@3.0.0"));
        assert!(provides("wasi:keyvalue/atomics@0.2.0-draft2"));
        assert!(!provides("spin:sqlite/sqlite@3.0.0"));
        assert!(!provides("spin:redis/redis@3.1.0"));
        // The release candidate's imports are renamed to 0.3.0 before linking
        // (engine/release_candidate_imports.rs): by their own name, they are not linked.
        assert!(!provides("wasi:cli/stdout@0.3.0-rc-2026-03-15"));
        assert!(provides("wasi:http/outgoing-handler@0.2.6"));
        assert!(provides("wasi:http/client@0.3.0"));
        assert!(!provides("wasi:http/client@0.3.0-rc-2026-03-15"));
    }
}
