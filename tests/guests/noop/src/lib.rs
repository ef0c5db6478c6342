//! The trivial timer component the host's benchmark measures: does nothing, prints nothing.

use spin_trigger_sdk::timer_component;

#[timer_component]
fn tick() {}
