//! Write Spin timer and Redis components in Rust with one attribute macro.
//!
//! ```no_run
//! use spin_trigger_sdk::timer_component;
//!
//! #[timer_component]
//! fn tick() {
//!     let message = spin_trigger_sdk::variables::get("message").unwrap_or_default();
//!     println!("{message}");
//! }
//! ```
//!
//! The macro picks the WIT world from the handler's signature; this table is the one place
//! every handler shape is listed:
//!
//! | handler | world | runs on |
//! | --- | --- | --- |
//! | `#[timer_component] fn tick()` (or `async fn`) | `fermyon:example/spin-timer` (Spin's) | this project's host and Spin with the `trigger-timer` plugin |
//! | `#[timer_component] fn tick(tick: Tick)`, or returning `Result<(), E>` with `E: Display` (e.g. `anyhow::Result<()>`) | `spin-trigger:sdk/timer@0.4.0` | this project's host |
//! | `#[redis_component] fn on()`, or taking `Vec<u8>`, `bytes::Bytes`, `String` or `redis::Json<T>` | `fermyon:spin/inbound-redis` (Spin's) | this project's host and Spin's built-in Redis trigger |
//! | `#[redis_component] fn on(message: redis::Message)` (channel, payload, pattern; the stream entry for a stream), returning also `redis::Outcome` or `Result<Outcome, E>` | `spin-trigger:sdk/redis@0.5.0` | this project's host |
//! | `#[redis_component] fn on(batch: redis::Batch)` (up to `batch_size` stream entries per call; `Batch::fail`, `Batch::retry_after` and `Batch::dead_letter` mark entries) | `spin-trigger:sdk/redis-batch@0.5.0` | this project's host |
//!
//! A Redis handler returns `()` or `Result<(), E>` with `E: Display`; one taking a
//! `redis::Message` may return a [`redis::Outcome`] instead (retry a stream entry after a delay,
//! or dead-letter it now). A `String` payload that is
//! not UTF-8, or a `Json<T>` payload that does not decode, is a handler error, never a panic;
//! Spin's raw Redis world carries no error message, so a payload-only handler's error goes to
//! its stderr. Any other shape — other arguments or return types, generics, `self`, `unsafe`,
//! macro arguments, two handlers in one crate — is a compile error on the offending tokens that
//! says what to write instead.
//!
//! Build with `cargo build --target wasm32-wasip2 --release`: the result is a component.

#![warn(missing_docs)]

// The bindings refer to this crate by its absolute name, so they work both here and in the
// user crates that expand the export macros.
extern crate self as spin_trigger_sdk;

mod executor;
pub mod http;
pub mod key_value;
pub mod redis;
pub mod sqlite;
pub mod timer;
pub mod variables;

/// Marks the function that handles a component's timer ticks.
///
/// Accepted shapes: `fn` or `async fn`; no argument or one [`timer::Tick`]; returning `()` or
/// `Result<(), E>` where `E: Display` (e.g. `anyhow::Result<()>`). A handler with no argument that
/// returns `()` exports Spin's raw `spin-timer` world, so the component also runs on Spin's own
/// timer trigger; any other shape exports the richer `spin-trigger:sdk/timer` world.
///
/// ```no_run
/// use spin_trigger_sdk::{timer::Tick, timer_component};
///
/// #[timer_component]
/// async fn on_tick(tick: Tick) -> anyhow::Result<()> {
///     anyhow::ensure!(tick.sequence < 1_000, "that is enough ticks");
///     println!("tick {}", tick.sequence);
///     Ok(())
/// }
/// ```
///
/// One handler per crate: a component exports exactly one world.
pub use spin_trigger_sdk_macro::timer_component;

/// Marks the function that handles a component's Redis messages.
///
/// Accepted shapes: `fn` or `async fn`; no argument, the payload as `Vec<u8>`, `bytes::Bytes`,
/// `String` (UTF-8 checked) or [`redis::Json<T>`] (any `T: DeserializeOwned`), or the whole
/// [`redis::Message`] (channel, payload, pattern); returning `()` or `Result<(), E>` where
/// `E: Display` (a handler taking the `Message` may also return [`redis::Outcome`] or
/// `Result<Outcome, E>`). A payload that does not decode is a handler error with a clear message, never a
/// panic.
///
/// Payload-only handlers export Spin's raw `inbound-redis` interface, so the component also runs
/// under Spin's built-in Redis trigger (an error's message goes to the component's stderr, since
/// that interface carries none). A handler taking [`redis::Message`] exports the richer
/// `spin-trigger:sdk/redis@0.5.0` world, whose errors carry their message to the host and whose
/// message, from a `redis-stream` trigger, carries the [`redis::StreamEntry`]. Payload-only
/// handlers serving a stream get the entry's field `payload`.
///
/// ```no_run
/// use serde::Deserialize;
/// use spin_trigger_sdk::redis::{Connection, Json};
/// use spin_trigger_sdk::redis_component;
///
/// #[derive(Deserialize)]
/// struct Order {
///     id: u64,
/// }
///
/// #[redis_component]
/// fn on_order(order: Json<Order>) -> anyhow::Result<()> {
///     let address = spin_trigger_sdk::variables::get("redis_address")?;
///     Connection::open(&address)?.publish("accepted", order.id.to_string())?;
///     Ok(())
/// }
/// ```
pub use spin_trigger_sdk_macro::redis_component;

/// What the code generated by the macros refers to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::executor::block_on;
    pub use crate::redis::{
        FromPayload, MessageResult, batch_redis_export, raw_redis_export, rich_redis_export,
    };
    pub use crate::timer::{raw_timer_export, rich_timer_export};
    pub use wit_bindgen;

    /// Host imports shared by every world, generated once.
    pub mod imports {
        wit_bindgen::generate!({
            world: "spin-trigger:sdk/imports@0.1.0",
            path: "wit",
            generate_all,
            runtime_path: "::spin_trigger_sdk::__private::wit_bindgen::rt",
        });
    }

    /// One world's bindings, each the same but for its world: the imports it shares with
    /// [`imports`] (`with`), and an export macro the attribute macros call.
    macro_rules! world_bindings {
        (
            $(#[$attr:meta])* $module:ident: $world:tt, $bindings_module:tt,
            with: { $($with:tt)* } $(, $generate_all:ident)?
        ) => {
            $(#[$attr])*
            pub mod $module {
                wit_bindgen::generate!({
                    world: $world,
                    path: "wit",
                    runtime_path: "::spin_trigger_sdk::__private::wit_bindgen::rt",
                    with: { $($with)* },
                    $($generate_all,)?
                    pub_export_macro: true,
                    default_bindings_module: $bindings_module,
                });
            }
        };
    }

    world_bindings! {
        /// Spin's raw timer world.
        raw_timer: "fermyon:example/spin-timer", "::spin_trigger_sdk::__private::raw_timer",
        with: { "fermyon:spin/variables@2.0.0": crate::__private::imports::fermyon::spin2_0_0::variables }
    }

    world_bindings! {
        /// Spin's raw Redis world: what its built-in Redis trigger accepts.
        raw_redis: "fermyon:spin/redis-trigger", "::spin_trigger_sdk::__private::raw_redis",
        with: {}, generate_all
    }

    world_bindings! {
        /// Our richer Redis world, version 0.5.0 (the handler decides its message's outcome).
        redis: "spin-trigger:sdk/redis@0.5.0", "::spin_trigger_sdk::__private::redis",
        with: {
            "fermyon:spin/variables@2.0.0": crate::__private::imports::fermyon::spin2_0_0::variables,
            "fermyon:spin/redis@2.0.0": crate::__private::imports::fermyon::spin2_0_0::redis,
        }
    }

    world_bindings! {
        /// Our Redis batch world, version 0.5.0: many stream entries per call, a decision for
        /// each not simply handled.
        redis_batch: "spin-trigger:sdk/redis-batch@0.5.0", "::spin_trigger_sdk::__private::redis_batch",
        with: {
            "fermyon:spin/variables@2.0.0": crate::__private::imports::fermyon::spin2_0_0::variables,
            "fermyon:spin/redis@2.0.0": crate::__private::imports::fermyon::spin2_0_0::redis,
        }
    }

    world_bindings! {
        /// Our richer timer world, version 0.4.0 (the tick carries its attempt and lateness).
        timer: "spin-trigger:sdk/timer@0.4.0", "::spin_trigger_sdk::__private::timer",
        with: {
            "fermyon:spin/variables@2.0.0": crate::__private::imports::fermyon::spin2_0_0::variables,
            "fermyon:spin/redis@2.0.0": crate::__private::imports::fermyon::spin2_0_0::redis,
        }
    }

    /// What a handler may return: `()` or `Result<(), E>` with `E: Display`.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not a handler return type",
        label = "return `()` or `Result<(), E>` where `E: Display`",
        note = "`anyhow::Result<()>` works, as does any `Result<(), E>` whose error implements `Display`",
        note = "an `Outcome` is returned by a Redis handler taking the whole `spin_trigger_sdk::redis::Message`"
    )]
    pub trait HandlerResult {
        /// The handler's outcome, its error rendered to a message.
        fn into_message_result(self) -> Result<(), String>;
    }

    impl HandlerResult for () {
        fn into_message_result(self) -> Result<(), String> {
            Ok(())
        }
    }

    impl<E: core::fmt::Display> HandlerResult for Result<(), E> {
        fn into_message_result(self) -> Result<(), String> {
            // `{:#}` shows anyhow's whole context chain on one line.
            self.map_err(|error| format!("{error:#}"))
        }
    }
}
