//! Running an app: prepare every component a trigger uses, then run all triggers in one process.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::AdminOptions;
use crate::allowed_hosts::AllowedHosts;
use crate::app::App;
use crate::engine::{Engine, EngineOptions, PoolSize};
use crate::trigger_type::{BuildContext, RunTrigger};
use crate::variables::ResolvedVariables;

/// How long a started app's handlers may finish when its triggers end by themselves, as
/// `--shutdown-timeout`'s default.
const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// An app with every component compiled and linked, ready to run.
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// use spin_trigger_host::{EngineOptions, ResolvedVariables, Runtime, manifest, variables::Providers};
///
/// let app = manifest::load("spin.toml")?;
/// let variables = app.resolve_variables(&Providers::from_process(Default::default()))?;
/// let runtime = Runtime::new(&app, &variables, EngineOptions::default())?;
/// runtime.run_until(tokio::signal::ctrl_c(), std::time::Duration::from_secs(10)).await?;
/// # Ok(()) }
/// ```
pub struct Runtime {
    engine: Arc<Engine>,
    /// One per trigger type the app uses.
    triggers: Vec<Box<dyn RunTrigger>>,
    /// Where the admin endpoint listens, if anywhere.
    admin: AdminOptions,
}

impl Runtime {
    /// Compiles and links every component the app's triggers use. Fails, before anything runs,
    /// on a missing or invalid component or one that targets no world this host knows.
    pub fn new(
        app: &App,
        variables: &ResolvedVariables,
        options: EngineOptions,
    ) -> anyhow::Result<Self> {
        // For `rediss://`; a second runtime in the same process finds it already installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Pool slots hold the largest memory and tables any trigger allows.
        let largest = |limit: fn(&crate::limits::HandlerLimits) -> Option<usize>| {
            app.triggers
                .iter()
                .filter_map(|trigger| limit(&trigger.limits))
                .max()
                .unwrap_or(0)
        };
        let namespace = options.namespace.clone();
        let admin = options.admin.clone();
        let pool = PoolSize {
            live_instances: app.max_live_instances(),
            largest_memory: largest(|limits| limits.max_memory),
            largest_table_elements: largest(|limits| limits.max_table_elements),
        };
        let engine = Arc::new(Engine::with_pool(options, pool)?);
        let used = app.triggers.iter().map(|trigger| &trigger.component);
        let mut prepared = BTreeMap::new();
        for id in used {
            if prepared.contains_key(id) {
                continue;
            }
            let component = app
                .component(id)
                .with_context(|| format!("no component `{id}`"))?;
            let values = variables.components.get(id).cloned().unwrap_or_default();
            let rendered = component
                .allowed_outbound_hosts
                .iter()
                .map(|entry| variables.render(entry))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let allowed_hosts = AllowedHosts::parse(&rendered).map_err(|message| {
                anyhow::anyhow!("component `{id}`: allowed_outbound_hosts: {message}")
            })?;
            prepared.insert(
                id.clone(),
                Arc::new(engine.prepare(component, values, allowed_hosts)?),
            );
        }
        let deployment = match &namespace {
            Some(namespace) => format!("{}@{namespace}", app.name),
            None => app.name.clone(),
        };
        let context = BuildContext {
            deployment: &deployment,
            variables,
            prepared: &prepared,
            engine: &engine,
        };
        let triggers = crate::trigger_registry::build_all(&app.triggers, &context)?;
        Ok(Runtime {
            engine,
            triggers,
            admin,
        })
    }

    /// Runs each timer component once; fails naming every component that failed.
    pub async fn run_once(&self) -> anyhow::Result<()> {
        self.engine.seed_stores().await?;
        let mut result = Ok(());
        for trigger in &self.triggers {
            result = trigger.run_once(&self.engine).await;
            if result.is_err() {
                break;
            }
        }
        // The runs' spans and metrics go out before the process does.
        self.engine.telemetry().shutdown().await;
        result
    }

    /// Runs every trigger until `shutdown` completes, then stops taking events and waits up to
    /// `grace` for handlers in flight. Those still running at the deadline are an error naming
    /// their components.
    pub async fn run_until(&self, shutdown: impl Future, grace: Duration) -> anyhow::Result<()> {
        let shutdown = async move {
            shutdown.await;
            grace
        };
        self.run(shutdown, grace).await
    }

    /// Starts every trigger on the current tokio runtime and returns at once; the app runs
    /// until [`RunningApp::stop`].
    ///
    /// ```no_run
    /// # async fn example(runtime: spin_trigger_host::Runtime) -> anyhow::Result<()> {
    /// let running = runtime.start();
    /// tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    /// running.stop(std::time::Duration::from_secs(10)).await?;
    /// # Ok(()) }
    /// ```
    pub fn start(self) -> RunningApp {
        let (stop, grace) = tokio::sync::oneshot::channel::<Duration>();
        let task = tokio::spawn(async move {
            // A dropped handle stops the app with no grace.
            let shutdown = async move { grace.await.unwrap_or_default() };
            self.run(shutdown, DEFAULT_GRACE).await
        });
        RunningApp { stop, task }
    }

    /// Runs every trigger until `shutdown` completes with the grace period to give handlers
    /// in flight (`grace` when the triggers end by themselves).
    async fn run(
        &self,
        shutdown: impl Future<Output = Duration>,
        grace: Duration,
    ) -> anyhow::Result<()> {
        let serving = CancellationToken::new();
        let telemetry = self.engine.telemetry().clone();
        // Serving before anything else, so probes answer while stores are seeded, and until
        // the last handler is done.
        telemetry.serve(serving.clone()).await?;
        let controls = self.triggers.iter().flat_map(|trigger| trigger.controls());
        crate::admin::serve(&self.admin, controls.collect(), serving.clone()).await?;
        let result = self.run_triggers(shutdown, grace).await;
        serving.cancel();
        telemetry.shutdown().await;
        result
    }

    /// Runs every trigger until `shutdown` (see [`Runtime::run`]), then stops them.
    async fn run_triggers(
        &self,
        shutdown: impl Future<Output = Duration>,
        grace: Duration,
    ) -> anyhow::Result<()> {
        self.engine.seed_stores().await?;
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        // Every trigger of one app runs in this one process.
        let triggers = futures_util::future::join_all(
            self.triggers
                .iter()
                .map(|trigger| trigger.run(self.engine.clone(), cancel.clone(), tracker.clone())),
        );
        let grace = tokio::select! {
            _ = triggers => grace,
            grace = shutdown => {
                tracing::info!("shutting down: no new events; waiting for handlers in flight");
                grace
            }
        };
        cancel.cancel();
        tracker.close();
        if tokio::time::timeout(grace, tracker.wait()).await.is_ok() {
            return Ok(());
        }
        let running: Vec<String> = self
            .engine
            .running_components()
            .into_iter()
            .map(|(component, count)| format!("`{component}` ({count})"))
            .collect();
        tracing::warn!(
            abandoned = tracker.len(),
            "handlers still running after {grace:?}; stopping anyway: {}",
            running.join(", ")
        );
        anyhow::bail!(
            "stopped at the shutdown deadline ({grace:?}, --shutdown-timeout) with handlers still running: {}",
            if running.is_empty() {
                "(between events)".to_owned()
            } else {
                running.join(", ")
            }
        )
    }
}

/// An app running in the embedder's process, from [`Runtime::start`].
pub struct RunningApp {
    stop: tokio::sync::oneshot::Sender<Duration>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningApp {
    /// Stops taking events, then waits up to `grace` for handlers in flight; those still
    /// running at the deadline are an error naming their components.
    pub async fn stop(self, grace: Duration) -> anyhow::Result<()> {
        // Sending fails only when the app already stopped; its result is in the task.
        let _ = self.stop.send(grace);
        self.task.await.context("the app's task panicked")?
    }
}
