//! Host APIs a guest may import, one module per interface, plus the bindings they implement.

pub mod variables;

/// Host-side bindings for the imports every world shares, generated once.
pub mod bindings {
    wasmtime::component::bindgen!({
        world: "spin-trigger:sdk/imports",
        path: "../wit",
    });
}
