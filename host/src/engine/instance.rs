//! A component compiled and linked ([`PreparedComponent`]), the world it exports, and the fresh
//! store each event gets.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, ResourceTable};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};
use wasmtime_wasi_http::WasiHttpCtx;

use super::Engine;
use crate::allowed_hosts::AllowedHosts;
use crate::guest_files::GuestFiles;
use crate::host_api::InstanceState;
use crate::host_api::outbound_http::OutboundHttpHooks;
use crate::limits::Limits;
use crate::stdio::ComponentOutput;
use crate::stores::StoreAccess;

/// Handles (open stores, connections, streams, CAS values...) one instance may hold at once:
/// wasmtime's default is a million, each of which may keep host memory alive.
const MAX_RESOURCES: usize = 10_000;

impl Engine {
    /// A fresh store for one event, held to `limits`: the guest sees its own variables,
    /// environment and files and nothing else of the host.
    pub fn new_store(
        &self,
        component: &PreparedComponent,
        limits: &Limits,
    ) -> anyhow::Result<Store<InstanceState>> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(component.stdout.clone())
            .stderr(component.stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for (name, value) in &component.environment {
            wasi.env(name, value);
        }
        let perms = if component.files.writable() {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        for (host_path, guest_path) in component.files.mounts() {
            wasi.preopened_dir(host_path, guest_path, perms)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "component `{}`: opening files directory {}",
                        component.id,
                        host_path.display()
                    )
                })?;
        }
        let state = InstanceState {
            component_id: component.id.clone(),
            variables: component.variables.clone(),
            allowed_hosts: component.allowed_hosts.clone(),
            open_redis_connections: 0,
            redis_tls: self.redis_tls.clone(),
            stores: component.stores.clone(),
            open_stores: 0,
            open_databases: 0,
            cas_bytes: 0,
            guest_spans_ended: 0,
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            http_hooks: OutboundHttpHooks::new(
                component.id.clone(),
                component.allowed_hosts.clone(),
                self.outbound_http.clone(),
            ),
            table: resource_table(),
            limits: crate::limits::GuestLimiter::new(limits),
            host_call_limits: crate::limits::HostCallLimits::starting_now(limits),
            _live: self.live.register(&component.id),
        };
        let mut store = Store::new(&component.engine, state);
        store.limiter(|state| &mut state.limits);
        // A new store's deadline is the next epoch: without this, every instance would yield to
        // the runtime at its first epoch check, and its task hop to another worker thread. At
        // each epoch after, the call's deadline is checked (and the guest yields).
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|store| store.data().host_call_limits.at_epoch());
        Ok(store)
    }
}

/// One world a trigger accepts: the export that marks it, what to call it in errors, and the
/// trigger's own tag for it.
pub struct AcceptedWorld<W> {
    pub export: &'static str,
    pub description: &'static str,
    pub world: W,
}

impl PreparedComponent {
    /// Whether the component runs on the engine with component-model async, which only
    /// components that use it (`async func` exports or imports) need.
    pub fn is_concurrent(&self) -> bool {
        self.concurrent
    }

    /// Picks the first of `worlds` whose export the component has; none is an error naming the
    /// component, what it exports, and what a `kind` component must export.
    pub fn select_world<W: Copy>(
        &self,
        kind: &str,
        worlds: &[AcceptedWorld<W>],
    ) -> anyhow::Result<W> {
        let exports = |name: &str| self.export_names.iter().any(|export| export == name);
        if let Some(accepted) = worlds.iter().find(|accepted| exports(accepted.export)) {
            return Ok(accepted.world);
        }
        let expected: Vec<String> = worlds
            .iter()
            .map(|accepted| format!("`{}` ({})", accepted.export, accepted.description))
            .collect();
        anyhow::bail!(
            "component `{}` is not a {kind} component: it exports [{}], but a {kind} component exports one of: {}",
            self.id,
            self.export_names.join(", "),
            expected.join(", ")
        )
    }
}

/// A component compiled and linked, ready for a fresh instance per event.
pub struct PreparedComponent {
    /// The component's id.
    pub id: Arc<str>,
    /// The component's top-level export names, which tell which world it targets.
    pub export_names: Vec<String>,
    /// Linked, ready to instantiate.
    pub pre: InstancePre<InstanceState>,
    /// The engine it was compiled for; its stores belong to the same one.
    pub(super) engine: wasmtime::Engine,
    /// Whether that is the engine with component-model async.
    pub(super) concurrent: bool,
    pub(super) variables: Arc<BTreeMap<String, String>>,
    pub(super) allowed_hosts: Arc<AllowedHosts>,
    /// The stores and databases the component may open.
    pub(super) stores: Arc<StoreAccess>,
    pub(super) environment: BTreeMap<String, String>,
    pub(super) files: GuestFiles,
    /// Built once: each instance's streams share the prefix.
    pub(super) stdout: ComponentOutput,
    pub(super) stderr: ComponentOutput,
}

/// An instance's resource table, holding at most [`MAX_RESOURCES`] handles.
fn resource_table() -> ResourceTable {
    let mut table = ResourceTable::new();
    table.set_max_capacity(MAX_RESOURCES);
    table
}

pub(super) fn export_names(component: &Component) -> Vec<String> {
    component
        .component_type()
        .exports(component.engine())
        .map(|(name, _)| name.to_owned())
        .collect()
}
