//! The attribute macros of `spin-trigger-sdk`. Use them through that crate, which documents them
//! and holds the bindings they expand to.
//!
//! Each macro parses the function, validates it into a `handler::Handler`, then emits the
//! function unchanged beside the export glue. On a mistake it emits the function and the error,
//! so editors keep working.

#![warn(missing_docs)]

use proc_macro::TokenStream;

mod handler;
mod redis;
mod timer;

/// Marks the function that handles a component's timer ticks. See `spin_trigger_sdk::timer_component`.
#[proc_macro_attribute]
pub fn timer_component(attr: TokenStream, item: TokenStream) -> TokenStream {
    handler::expand(&timer::TIMER, attr.into(), item.into()).into()
}

/// Marks the function that handles a component's Redis messages. See `spin_trigger_sdk::redis_component`.
#[proc_macro_attribute]
pub fn redis_component(attr: TokenStream, item: TokenStream) -> TokenStream {
    handler::expand(&redis::REDIS, attr.into(), item.into()).into()
}
