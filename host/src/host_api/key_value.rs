//! Key-value stores for guests, in every version Spin's SDKs import:
//! `fermyon:spin/key-value@2.0.0`, `spin:key-value/key-value@3.0.0` (`async func`s), and
//! `wasi:keyvalue` 0.2.0-draft2 (store, atomics, batch). One implementation under all three:
//! [`crate::stores::key_value_store::KeyValueStore`].
//!
//! A component may open only the labels in its `key_value_stores`; any other gets
//! `access-denied`, as in Spin. Open stores live in the instance's resource table.

use std::sync::Arc;

use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

use crate::host_api::bindings::fermyon::spin2_0_0::key_value as v2;
use crate::host_api::bindings::wasi::keyvalue::{atomics, batch, store as wasi};
use crate::host_api::spin3_bindings::spin::key_value::key_value as v3;
use crate::host_api::{InstanceState, Spin3};
use crate::stores::key_value_store::{KeyValueError, KeyValueStore};

/// Stores (or buckets) one instance may hold open at once.
const MAX_OPEN_STORES: usize = 64;

/// An open store, held in the instance's resource table.
pub struct OpenStore(Arc<KeyValueStore>);

/// A `wasi:keyvalue/atomics` compare-and-swap: the key, and its value when the guest began.
pub struct Cas {
    store: Arc<KeyValueStore>,
    key: String,
    current: Option<Vec<u8>>,
}

impl Cas {
    /// The bytes this CAS keeps on the host.
    fn size(&self) -> usize {
        self.key.len() + self.current.as_ref().map_or(0, Vec::len)
    }
}

impl InstanceState {
    /// Keeps a CAS in the resource table, when the bytes all this instance's CAS resources keep
    /// stay within its memory limit.
    fn keep_cas(&mut self, cas: Cas) -> Result<Resource<Cas>, wasi::Error> {
        let held = self.cas_bytes.saturating_add(cas.size());
        if let Err(message) = self
            .host_call_limits
            .check_bytes(held, "the values held by this instance's CAS resources")
        {
            return Err(wasi::Error::Other(message));
        }
        let resource = self
            .table
            .push(cas)
            .map_err(|error| wasi::Error::Other(error.to_string()))?;
        self.cas_bytes = held;
        Ok(resource)
    }

    /// Takes a CAS out of the resource table.
    fn take_cas(&mut self, cas: Resource<Cas>) -> wasmtime::Result<Cas> {
        let cas = self.table.delete(cas)?;
        self.cas_bytes = self.cas_bytes.saturating_sub(cas.size());
        Ok(cas)
    }

    /// Opens the store `label` for this instance, when the component lists it.
    fn open_store(&mut self, label: &str) -> Result<OpenStore, KeyValueError> {
        if self.open_stores >= MAX_OPEN_STORES {
            return Err(KeyValueError::StoreTableFull);
        }
        let store = self.stores.key_value(label).inspect_err(|error| {
            if *error == KeyValueError::AccessDenied {
                tracing::warn!(
                    component = %self.component_id,
                    label,
                    "key-value store refused: not in the component's key_value_stores"
                );
            }
        })?;
        Ok(OpenStore(store))
    }

    /// Keeps a store the guest opened in the resource table.
    fn keep_store(&mut self, store: OpenStore) -> Result<Resource<OpenStore>, KeyValueError> {
        let resource = self
            .table
            .push(store)
            .map_err(|error| KeyValueError::Other(error.to_string()))?;
        self.open_stores += 1;
        Ok(resource)
    }

    /// The store behind a guest's handle.
    fn store(&self, resource: &Resource<OpenStore>) -> Result<Arc<KeyValueStore>, KeyValueError> {
        self.table
            .get(resource)
            .map(|open| open.0.clone())
            .map_err(|error| KeyValueError::Other(error.to_string()))
    }

    fn close_store(&mut self, resource: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(resource)?;
        self.open_stores = self.open_stores.saturating_sub(1);
        Ok(())
    }
}

// --- fermyon:spin/key-value@2.0.0 ---

impl From<KeyValueError> for v2::Error {
    fn from(error: KeyValueError) -> Self {
        match error {
            KeyValueError::AccessDenied => v2::Error::AccessDenied,
            KeyValueError::StoreTableFull => v2::Error::StoreTableFull,
            KeyValueError::Other(message) => v2::Error::Other(message),
        }
    }
}

impl v2::Host for InstanceState {}

impl v2::HostStore for InstanceState {
    async fn open(&mut self, label: String) -> Result<Resource<OpenStore>, v2::Error> {
        let store = self.open_store(&label)?;
        Ok(self.keep_store(store)?)
    }

    async fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> Result<Option<Vec<u8>>, v2::Error> {
        Ok(self.store(&store)?.get(key).await?)
    }

    async fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), v2::Error> {
        Ok(self.store(&store)?.set(key, value).await?)
    }

    async fn delete(&mut self, store: Resource<OpenStore>, key: String) -> Result<(), v2::Error> {
        Ok(self.store(&store)?.delete(key).await?)
    }

    async fn exists(&mut self, store: Resource<OpenStore>, key: String) -> Result<bool, v2::Error> {
        Ok(self.store(&store)?.exists(key).await?)
    }

    async fn get_keys(&mut self, store: Resource<OpenStore>) -> Result<Vec<String>, v2::Error> {
        Ok(self.store(&store)?.get_keys().await?)
    }

    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.close_store(store)
    }
}

// --- spin:key-value/key-value@3.0.0 ---

impl From<KeyValueError> for v3::Error {
    fn from(error: KeyValueError) -> Self {
        match error {
            KeyValueError::AccessDenied => v3::Error::AccessDenied,
            KeyValueError::StoreTableFull => v3::Error::StoreTableFull,
            KeyValueError::Other(message) => v3::Error::Other(message),
        }
    }
}

impl v3::Host for InstanceState {}

impl v3::HostStore for InstanceState {
    fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.close_store(store)
    }
}

/// The store behind a v3 handle, read through the accessor.
fn v3_store<T: Send>(
    accessor: &Accessor<T, Spin3>,
    store: &Resource<OpenStore>,
) -> Result<Arc<KeyValueStore>, v3::Error> {
    accessor.with(|mut access| access.get().store(store).map_err(Into::into))
}

impl<T: Send> v3::HostStoreWithStore<T> for Spin3 {
    async fn open(
        accessor: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, v3::Error>> {
        Ok(accessor.with(|mut access| {
            let state = access.get();
            let store = state.open_store(&label)?;
            Ok(state.keep_store(store)?)
        }))
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, v3::Error>> {
        Ok(async { Ok(v3_store(accessor, &store)?.get(key).await?) }.await)
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), v3::Error>> {
        Ok(async { Ok(v3_store(accessor, &store)?.set(key, value).await?) }.await)
    }

    async fn delete(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), v3::Error>> {
        Ok(async { Ok(v3_store(accessor, &store)?.delete(key).await?) }.await)
    }

    async fn exists(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, v3::Error>> {
        Ok(async { Ok(v3_store(accessor, &store)?.exists(key).await?) }.await)
    }

    async fn get_keys(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), v3::Error>>)> {
        let keys = match v3_store(accessor, &store) {
            Ok(store) => store.get_keys().await.map_err(v3::Error::from),
            Err(error) => Err(error),
        };
        // The keys are read whole (as Spin's SQLite store reads them), then streamed; an error
        // ends an empty stream and is the future's value.
        let (keys, outcome) = match keys {
            Ok(keys) => (keys, Ok(())),
            Err(error) => (Vec::new(), Err(error)),
        };
        accessor.with(|mut access| {
            let keys = StreamReader::new(&mut access, keys)?;
            let outcome = FutureReader::new(&mut access, ready(outcome))?;
            Ok((keys, outcome))
        })
    }
}

/// A future for the guest that is ready with `value`.
pub(crate) fn ready<T: Send + 'static>(
    value: T,
) -> impl std::future::Future<Output = wasmtime::Result<T>> + Send + 'static {
    std::future::ready(Ok(value))
}

// --- wasi:keyvalue@0.2.0-draft2 ---

impl From<KeyValueError> for wasi::Error {
    fn from(error: KeyValueError) -> Self {
        match error {
            KeyValueError::AccessDenied => wasi::Error::AccessDenied,
            other => wasi::Error::Other(other.to_string()),
        }
    }
}

impl wasi::Host for InstanceState {
    async fn open(&mut self, identifier: String) -> Result<Resource<OpenStore>, wasi::Error> {
        let store = self.open_store(&identifier)?;
        Ok(self.keep_store(store)?)
    }
}

impl wasi::HostBucket for InstanceState {
    async fn get(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> Result<Option<Vec<u8>>, wasi::Error> {
        Ok(self.store(&bucket)?.get(key).await?)
    }

    async fn set(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), wasi::Error> {
        Ok(self.store(&bucket)?.set(key, value).await?)
    }

    async fn delete(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> Result<(), wasi::Error> {
        Ok(self.store(&bucket)?.delete(key).await?)
    }

    async fn exists(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> Result<bool, wasi::Error> {
        Ok(self.store(&bucket)?.exists(key).await?)
    }

    /// Every key in one response: the store reads them whole, so there is no next page.
    async fn list_keys(
        &mut self,
        bucket: Resource<OpenStore>,
        _cursor: Option<String>,
    ) -> Result<wasi::KeyResponse, wasi::Error> {
        let keys = self.store(&bucket)?.get_keys().await?;
        Ok(wasi::KeyResponse { keys, cursor: None })
    }

    async fn drop(&mut self, bucket: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.close_store(bucket)
    }
}

impl atomics::Host for InstanceState {
    async fn increment(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
        delta: i64,
    ) -> Result<i64, wasi::Error> {
        Ok(self.store(&bucket)?.increment(key, delta).await?)
    }

    async fn swap(&mut self, cas: Resource<Cas>, value: Vec<u8>) -> Result<(), atomics::CasError> {
        let cas = self.take_cas(cas).map_err(|error| {
            atomics::CasError::StoreError(wasi::Error::Other(error.to_string()))
        })?;
        let swapped = cas
            .store
            .compare_and_swap(cas.key.clone(), cas.current.clone(), value)
            .await
            .map_err(|error| atomics::CasError::StoreError(error.into()))?;
        if swapped {
            return Ok(());
        }
        // Someone else changed the key: hand the guest a fresh CAS to retry with.
        let fresh = Cas {
            current: cas
                .store
                .get(cas.key.clone())
                .await
                .map_err(|error| atomics::CasError::StoreError(error.into()))?,
            ..cas
        };
        let fresh = self
            .keep_cas(fresh)
            .map_err(atomics::CasError::StoreError)?;
        Err(atomics::CasError::CasFailed(fresh))
    }
}

impl atomics::HostCas for InstanceState {
    async fn new(
        &mut self,
        bucket: Resource<OpenStore>,
        key: String,
    ) -> Result<Resource<Cas>, wasi::Error> {
        let store = self.store(&bucket)?;
        let current = store.get(key.clone()).await?;
        self.keep_cas(Cas {
            store,
            key,
            current,
        })
    }

    async fn current(&mut self, cas: Resource<Cas>) -> Result<Option<Vec<u8>>, wasi::Error> {
        self.table
            .get(&cas)
            .map(|cas| cas.current.clone())
            .map_err(|error| wasi::Error::Other(error.to_string()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.take_cas(cas)?;
        Ok(())
    }
}

impl batch::Host for InstanceState {
    async fn get_many(
        &mut self,
        bucket: Resource<OpenStore>,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, wasi::Error> {
        let max_bytes = self.host_call_limits.max_bytes;
        Ok(self.store(&bucket)?.get_many(keys, max_bytes).await?)
    }

    async fn set_many(
        &mut self,
        bucket: Resource<OpenStore>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), wasi::Error> {
        Ok(self.store(&bucket)?.set_many(key_values).await?)
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<OpenStore>,
        keys: Vec<String>,
    ) -> Result<(), wasi::Error> {
        Ok(self.store(&bucket)?.delete_many(keys).await?)
    }
}
