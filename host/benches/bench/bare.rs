//! The bare-wasmtime baseline: what dispatching one message costs with nothing of the host in
//! the way. A wasmtime engine with the pooling allocator (set up as the host sets it up), an
//! `InstancePre`, and per call a store
//! holding a minimal WASI context, instantiate, `handle-message`, drop. The guest's output is
//! discarded, or with [`Output::Inherit`] written to this process's stdout as is. With
//! [`Bare::with_http`], `wasi:http` is linked too, with wasmtime-wasi-http's own sender.

use std::path::Path;

use anyhow::Context;
use spin_trigger_host::EngineOptions;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

wasmtime::component::bindgen!({
    world: "fermyon:spin/redis-trigger",
    path: "wit",
    exports: { default: async },
});

struct BareState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiHttpView for BareState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: wasmtime_wasi_http::default_hooks(),
        }
    }
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Where the guest's stdout goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Discard,
    Inherit,
}

/// A component exporting Spin's raw Redis world, ready to call.
pub struct Bare {
    engine: Engine,
    pre: RedisTriggerPre<BareState>,
    output: Output,
}

impl Bare {
    pub fn new(wasm: &Path, output: Output) -> anyhow::Result<Self> {
        Self::build(wasm, output, false)
    }

    /// A baseline whose guest may make HTTP requests: `wasi:http` linked, each request sent
    /// by wasmtime-wasi-http's default sender (a connection of its own per request).
    pub fn with_http(wasm: &Path) -> anyhow::Result<Self> {
        Self::build(wasm, Output::Discard, true)
    }

    fn build(wasm: &Path, output: Output, http: bool) -> anyhow::Result<Self> {
        // The host's pool settings, so that the ratio is the cost of the host's own code.
        let pooling = spin_trigger_host::internals::pooling_config(
            &EngineOptions::default(),
            &spin_trigger_host::internals::PoolSize::default(),
        )
        .context("the default options use the pool")?;
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            // Off, as in the host's engine for components that need no component-model async:
            // concurrency support makes every call a component-model task.
            .concurrency_support(false)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config)?;
        let component = Component::from_file(&engine, wasm)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("compiling {}", wasm.display()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        if http {
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        }
        let pre = RedisTriggerPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Bare {
            engine,
            pre,
            output,
        })
    }

    /// One message in a fresh instance.
    pub async fn handle(&self, payload: &[u8]) -> anyhow::Result<()> {
        let mut wasi = WasiCtxBuilder::new();
        if self.output == Output::Inherit {
            wasi.inherit_stdout();
        }
        let state = BareState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
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
