//! Running an app: prepare every component a trigger uses, then run all triggers in one process.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::app::App;
use crate::engine::{Engine, EngineOptions};
use crate::timer::TimerTrigger;
use crate::variables::ResolvedVariables;

/// An app with every component compiled and linked, ready to run.
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// use spin_trigger_host::{EngineOptions, ResolvedVariables, Runtime, manifest, variables::Providers};
///
/// let app = manifest::load("spin.toml")?;
/// let variables = ResolvedVariables::resolve(&app, &Providers::from_process(Default::default()))?;
/// let runtime = Runtime::new(&app, &variables, EngineOptions::default())?;
/// runtime.run_until(tokio::signal::ctrl_c(), std::time::Duration::from_secs(10)).await;
/// # Ok(()) }
/// ```
pub struct Runtime {
    engine: Arc<Engine>,
    timer: TimerTrigger,
}

impl Runtime {
    /// Compiles and links every component the app's triggers use. Fails, before anything runs,
    /// on a missing or invalid component or one that targets no world this host knows.
    pub fn new(
        app: &App,
        variables: &ResolvedVariables,
        options: EngineOptions,
    ) -> anyhow::Result<Self> {
        let engine = Arc::new(Engine::new(options)?);
        let mut prepared = BTreeMap::new();
        for trigger in &app.timer_triggers {
            if prepared.contains_key(&trigger.component) {
                continue;
            }
            let component = app
                .component(&trigger.component)
                .with_context(|| format!("no component `{}`", trigger.component))?;
            let values = variables
                .components
                .get(&component.id)
                .cloned()
                .unwrap_or_default();
            prepared.insert(component.id.clone(), engine.prepare(component, values)?);
        }
        let timer = TimerTrigger::new(app, &mut prepared)?;
        Ok(Runtime { engine, timer })
    }

    /// Runs each timer component once; fails naming every component that failed.
    pub async fn run_once(&self) -> anyhow::Result<()> {
        self.timer.run_once(&self.engine).await
    }

    /// Runs every trigger until `shutdown` completes, then stops taking events and waits up to
    /// `grace` for handlers in flight. Returns how many were still running at the deadline.
    pub async fn run_until(&self, shutdown: impl Future, grace: Duration) -> usize {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let triggers = self
            .timer
            .run(self.engine.clone(), cancel.clone(), tracker.clone());
        tokio::select! {
            _ = triggers => {}
            _ = shutdown => tracing::info!("shutting down: no new events; waiting for handlers in flight"),
        }
        cancel.cancel();
        tracker.close();
        match tokio::time::timeout(grace, tracker.wait()).await {
            Ok(()) => 0,
            Err(_) => {
                let abandoned = tracker.len();
                tracing::warn!(
                    abandoned,
                    "handlers still running after {grace:?}; stopping anyway"
                );
                abandoned
            }
        }
    }
}
