//! Host APIs a guest may import, one module per interface, plus the bindings they implement.

pub mod outbound_redis;
pub mod variables;

/// Host-side bindings for the imports every world shares, generated once.
pub mod bindings {
    wasmtime::component::bindgen!({
        world: "spin-trigger:sdk/imports",
        path: "wit",
        // Redis calls do network I/O: async, so a slow server never blocks a runtime thread.
        imports: { "fermyon:spin/redis": async },
        with: { "fermyon:spin/redis.connection": super::outbound_redis::OutboundConnection },
    });
}
