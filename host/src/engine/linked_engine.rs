//! One wasmtime engine and the linkers holding the host APIs for it: the host has a plain one
//! and, for the components that use component-model async, a concurrent one.

use std::sync::OnceLock;

use anyhow::Context;
use wasmtime::component::{Component, Linker};

use crate::host_api::{self, InstanceState};

/// A wasmtime engine and the linkers holding the host APIs for it.
pub(super) struct LinkedEngine {
    pub(super) engine: wasmtime::Engine,
    /// WASI 0.2 and the Spin APIs.
    linker: Linker<InstanceState>,
    pub(super) concurrent: bool,
    /// `linker` plus outbound HTTP, for the components that import it.
    http_linker: OnceLock<Result<Linker<InstanceState>, String>>,
}

impl LinkedEngine {
    pub(super) fn new(
        concurrent: bool,
        pooling: Option<&wasmtime::PoolingAllocationConfig>,
        debug_info: bool,
        wasi_otel: bool,
    ) -> anyhow::Result<Self> {
        let mut config = wasmtime::Config::new();
        config.debug_info(debug_info);
        if let Some(pooling) = pooling {
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
                pooling.clone(),
            ));
        }
        config.wasm_component_model(true);
        // Spin's v3 worlds (spin-sdk 6 and later) use component-model async: `async func`
        // exports and imports, and the `waitable` / `task` built-ins that come with them.
        config.wasm_component_model_async(concurrent);
        config.concurrency_support(concurrent);
        config.epoch_interruption(true);
        let engine = wasmtime::Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("configuring wasmtime")?;

        let mut linker = Linker::new(&engine);
        host_api::add_to_linker(&mut linker, concurrent)?;
        if wasi_otel {
            host_api::otel::add_to_linker(&mut linker).context("linking wasi:otel")?;
        }
        Ok(LinkedEngine {
            engine,
            linker,
            concurrent,
            http_linker: OnceLock::new(),
        })
    }

    /// The linker for `component`: with outbound HTTP when it imports `wasi:http` (made the
    /// first time one does), else the base one.
    pub(super) fn linker_for(
        &self,
        component: &Component,
    ) -> anyhow::Result<&Linker<InstanceState>> {
        let component_type = component.component_type();
        let imports = component_type
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned());
        if !host_api::needs_http(imports) {
            return Ok(&self.linker);
        }
        self.http_linker
            .get_or_init(|| {
                let mut linker = self.linker.clone();
                host_api::add_http_to_linker(&mut linker, self.concurrent)
                    .map(|()| linker)
                    .map_err(|error| crate::error_text::one_line(&error))
            })
            .as_ref()
            .map_err(|message| anyhow::anyhow!("{message}"))
    }
}

/// A validation failure caused by a WebAssembly feature (proposal) this host's engine leaves
/// off says so, before wasmparser's own words, which name the feature; other errors pass as they
/// are.
pub(super) fn feature_error(error: anyhow::Error) -> anyhow::Error {
    let text = format!("{error:#}");
    // wasmparser's wordings: "`waitable.join` requires the component model async feature",
    // "threads must be enabled for shared memories", "... support is not enabled".
    let about_a_feature = ["feature", "proposal", "must be enabled", "is not enabled"]
        .iter()
        .any(|marker| text.contains(marker));
    if about_a_feature {
        anyhow::anyhow!(
            "it uses a WebAssembly feature this host's engine does not enable ({}); the host \
             enables the component model with component-model async, and the WebAssembly \
             features wasmtime enables by default",
            crate::error_text::one_line(&error)
        )
    } else {
        error
    }
}
