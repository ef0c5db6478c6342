//! A timer component: the timer worlds this host runs (this project's 0.4.0, 0.2.0 and 0.1.0, and
//! Spin's timer example world), picked from what the component exports, and one tick run in a
//! fresh instance.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::anyhow;

use crate::engine::{AcceptedWorld, Engine, PreparedComponent};
use crate::host_api::InstanceState;
use crate::limits::Limits;

mod bindings {
    pub mod spin_example {
        wasmtime::component::bindgen!({
            world: "fermyon:example/spin-timer",
            path: "wit",
            exports: { default: async },
            with: { "fermyon:spin/variables@2.0.0": crate::host_api::bindings::fermyon::spin2_0_0::variables },
        });
    }
    /// Our timer world, version 0.4.0: the tick carries its attempt and whether it is late.
    pub mod sdk_0_4 {
        crate::host_api::our_world_bindings!("spin-trigger:sdk/timer@0.4.0");
    }
    /// Version 0.2.0: the tick carries its schedule.
    pub mod sdk_0_2 {
        crate::host_api::our_world_bindings!("spin-trigger:sdk/timer@0.2.0");
    }
    /// Version 0.1.0, for components built before the tick carried its schedule.
    pub mod sdk_0_1 {
        crate::host_api::our_world_bindings!("spin-trigger:sdk/timer@0.1.0");
    }
}

use bindings::sdk_0_1::exports::spin_trigger::sdk0_1_0::timer_handler as timer_handler_0_1;
use bindings::sdk_0_2::exports::spin_trigger::sdk0_2_0::timer_handler as timer_handler_0_2;
use bindings::sdk_0_4::exports::spin_trigger::sdk0_4_0::timer_handler;

/// Which timer world a component exports.
#[derive(Clone, Copy)]
enum TimerWorld {
    /// Ours: the tick (with its schedule, attempt and lateness) in, an error message out.
    Sdk0_4,
    /// Ours before the tick carried its attempt.
    Sdk0_2,
    /// Ours before the tick carried its schedule.
    Sdk0_1,
    /// Spin's timer example world, `handle-timer-request: func()`.
    SpinExample,
}

/// The timer worlds this host runs, in the order it looks for them.
const TIMER_WORLDS: &[AcceptedWorld<TimerWorld>] = &[
    AcceptedWorld {
        export: "spin-trigger:sdk/timer-handler@0.4.0",
        description: "this project's timer world",
        world: TimerWorld::Sdk0_4,
    },
    AcceptedWorld {
        export: "spin-trigger:sdk/timer-handler@0.2.0",
        description: "this project's timer world, 0.2.0",
        world: TimerWorld::Sdk0_2,
    },
    AcceptedWorld {
        export: "spin-trigger:sdk/timer-handler@0.1.0",
        description: "this project's timer world, 0.1.0",
        world: TimerWorld::Sdk0_1,
    },
    AcceptedWorld {
        export: "handle-timer-request",
        description: "Spin's timer world",
        world: TimerWorld::SpinExample,
    },
];

/// One firing, as the guest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    pub scheduled_at: SystemTime,
    pub fired_at: SystemTime,
    pub sequence: u64,
    /// The schedule, as [`TimerConfig::describe`] writes it.
    pub schedule: Arc<str>,
    /// Which attempt at this tick, from 1.
    pub attempt: u32,
    /// Missed while no host ran, and run at start by `catch_up`.
    pub late: bool,
}

pub(super) fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

/// A component ready to handle ticks, in whichever timer world it exports.
pub struct TimerComponent {
    prepared: Arc<PreparedComponent>,
    export: TimerExport,
}

enum TimerExport {
    SpinExample(bindings::spin_example::SpinTimerPre<InstanceState>),
    Sdk0_4(bindings::sdk_0_4::TimerPre<InstanceState>),
    Sdk0_2(bindings::sdk_0_2::TimerPre<InstanceState>),
    Sdk0_1(bindings::sdk_0_1::TimerPre<InstanceState>),
}

impl TimerComponent {
    /// Picks the world from what the component exports.
    pub fn new(prepared: Arc<PreparedComponent>) -> anyhow::Result<Self> {
        let export = match prepared.select_world("timer", TIMER_WORLDS)? {
            TimerWorld::Sdk0_4 => {
                TimerExport::Sdk0_4(bindings::sdk_0_4::TimerPre::new(prepared.pre.clone())?)
            }
            TimerWorld::Sdk0_2 => {
                TimerExport::Sdk0_2(bindings::sdk_0_2::TimerPre::new(prepared.pre.clone())?)
            }
            TimerWorld::Sdk0_1 => {
                TimerExport::Sdk0_1(bindings::sdk_0_1::TimerPre::new(prepared.pre.clone())?)
            }
            TimerWorld::SpinExample => TimerExport::SpinExample(
                bindings::spin_example::SpinTimerPre::new(prepared.pre.clone())?,
            ),
        };
        Ok(TimerComponent { prepared, export })
    }

    pub fn id(&self) -> &str {
        &self.prepared.id
    }

    /// Runs one tick in a fresh instance held to `limits`. A trap, a handler error or the
    /// deadline passing is an `Err`.
    pub async fn fire(&self, engine: &Engine, tick: Tick, limits: &Limits) -> anyhow::Result<()> {
        limits.run(self.call(engine, tick, limits)).await
    }

    async fn call(&self, engine: &Engine, tick: Tick, limits: &Limits) -> anyhow::Result<()> {
        let mut store = engine.new_store(&self.prepared, limits)?;
        let result = self.call_in(&mut store, tick).await;
        store.data().limits.explain(result)
    }

    async fn call_in(
        &self,
        store: &mut wasmtime::Store<InstanceState>,
        tick: Tick,
    ) -> anyhow::Result<()> {
        match &self.export {
            TimerExport::SpinExample(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                instance.call_handle_timer_request(&mut *store).await?;
            }
            TimerExport::Sdk0_4(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                let wit_tick = timer_handler::Tick {
                    scheduled_at_ms: unix_millis(tick.scheduled_at),
                    fired_at_ms: unix_millis(tick.fired_at),
                    sequence: tick.sequence,
                    schedule: tick.schedule.to_string(),
                    attempt: tick.attempt,
                    late: tick.late,
                };
                instance
                    .spin_trigger_sdk0_4_0_timer_handler()
                    .call_handle_tick(&mut *store, &wit_tick)
                    .await?
                    .map_err(|error| anyhow!("handler returned an error: {}", error.message))?;
            }
            TimerExport::Sdk0_2(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                let wit_tick = timer_handler_0_2::Tick {
                    scheduled_at_ms: unix_millis(tick.scheduled_at),
                    fired_at_ms: unix_millis(tick.fired_at),
                    sequence: tick.sequence,
                    schedule: tick.schedule.to_string(),
                };
                instance
                    .spin_trigger_sdk0_2_0_timer_handler()
                    .call_handle_tick(&mut *store, &wit_tick)
                    .await?
                    .map_err(|error| anyhow!("handler returned an error: {}", error.message))?;
            }
            TimerExport::Sdk0_1(pre) => {
                let instance = pre.instantiate_async(&mut *store).await?;
                let wit_tick = timer_handler_0_1::Tick {
                    scheduled_at_ms: unix_millis(tick.scheduled_at),
                    fired_at_ms: unix_millis(tick.fired_at),
                    sequence: tick.sequence,
                };
                instance
                    .spin_trigger_sdk0_1_0_timer_handler()
                    .call_handle_tick(&mut *store, wit_tick)
                    .await?
                    .map_err(|error| anyhow!("handler returned an error: {}", error.message))?;
            }
        }
        Ok(())
    }
}
