//! The state each instance's host calls see: its component's variables and allowed hosts, its
//! WASI and `wasi:http` contexts and resource table, its store limits.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::allowed_hosts::AllowedHosts;
use crate::host_api::outbound_http::OutboundHttpHooks;
use crate::live::LiveInstance;
use crate::redis_client::RedisTls;
use crate::stores::StoreAccess;

/// The per-instance state a guest's host calls see.
pub struct InstanceState {
    pub component_id: Arc<str>,
    /// The component's resolved variables.
    pub variables: Arc<BTreeMap<String, String>>,
    /// Where the component may connect.
    pub allowed_hosts: Arc<AllowedHosts>,
    /// Outbound Redis connections this instance holds.
    pub open_redis_connections: usize,
    /// How the instance's `rediss://` connections trust servers.
    pub redis_tls: RedisTls,
    /// The key-value stores and SQLite databases the component may open.
    pub(crate) stores: Arc<StoreAccess>,
    /// Key-value stores (and `wasi:keyvalue` buckets) this instance holds open.
    pub(crate) open_stores: usize,
    /// SQLite connections this instance holds open.
    pub(crate) open_databases: usize,
    /// Bytes the instance's `wasi:keyvalue` CAS resources keep on the host.
    pub(crate) cas_bytes: usize,
    /// Spans the guest has ended through `wasi:otel` in this call (see `host_api::otel`).
    pub(crate) guest_spans_ended: usize,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    /// Where the instance's outbound HTTP requests go, and which it may make.
    pub(crate) http_hooks: OutboundHttpHooks,
    pub(crate) table: ResourceTable,
    pub(crate) limits: crate::limits::GuestLimiter,
    /// What each host call may use: the handler's deadline, the instance's memory.
    pub(crate) host_call_limits: crate::limits::HostCallLimits,
    /// Listed among the live instances while this store exists.
    pub(crate) _live: LiveInstance,
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}
