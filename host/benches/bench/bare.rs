//! The bare-wasmtime baseline: what dispatching one message costs with nothing of the host in
//! the way. A wasmtime engine with the pooling allocator, an `InstancePre`, and per call a store
//! holding a minimal WASI context (output discarded), instantiate, `handle-message`, drop.

use std::path::Path;

use anyhow::Context;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    world: "fermyon:spin/redis-trigger",
    path: "wit",
    exports: { default: async },
});

struct BareState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A component exporting Spin's raw Redis world, ready to call.
pub struct Bare {
    engine: Engine,
    pre: RedisTriggerPre<BareState>,
}

impl Bare {
    pub fn new(wasm: &Path) -> anyhow::Result<Self> {
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_component_instances(64)
            .total_core_instances(256)
            .total_memories(64)
            .total_tables(128)
            .total_stacks(64);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config)?;
        let component = Component::from_file(&engine, wasm)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling {}", wasm.display()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        let pre = RedisTriggerPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Bare { engine, pre })
    }

    /// One message in a fresh instance.
    pub async fn handle(&self, payload: &[u8]) -> anyhow::Result<()> {
        let state = BareState {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&self.engine, state);
        let instance = self.pre.instantiate_async(&mut store).await?;
        instance
            .fermyon_spin_inbound_redis()
            .call_handle_message(&mut store, &payload.to_vec())
            .await?
            .map_err(|error| anyhow::anyhow!("handler error: {error:?}"))
    }
}
