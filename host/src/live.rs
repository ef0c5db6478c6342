//! Which components have instances running, so that a shutdown that reaches its deadline can
//! name what did not finish. Each instance's state holds a [`LiveInstance`] while it exists.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Which components have instances running, so that shutdown can name what did not finish.
#[derive(Default)]
pub(crate) struct LiveInstances {
    next: AtomicU64,
    components: Mutex<BTreeMap<u64, Arc<str>>>,
}

/// One entry of [`LiveInstances`], removed when the store holding it drops.
pub(crate) struct LiveInstance {
    id: u64,
    registry: Arc<LiveInstances>,
}

impl LiveInstances {
    pub(crate) fn register(self: &Arc<Self>, component: &Arc<str>) -> LiveInstance {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.components).insert(id, component.clone());
        LiveInstance {
            id,
            registry: self.clone(),
        }
    }
}

impl LiveInstances {
    /// The components with instances running now, each with how many.
    pub(crate) fn running_components(&self) -> BTreeMap<String, usize> {
        let mut running = BTreeMap::new();
        for component in lock(&self.components).values() {
            *running.entry(component.to_string()).or_insert(0) += 1;
        }
        running
    }
}

impl Drop for LiveInstance {
    fn drop(&mut self) {
        lock(&self.registry.components).remove(&self.id);
    }
}

/// A mutex's guard; a panic elsewhere while it was held leaves data that is still usable here.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
