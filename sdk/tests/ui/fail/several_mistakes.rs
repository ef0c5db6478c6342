// Every mistake is reported at once, not one per build.
use spin_trigger_sdk::timer_component;

#[timer_component]
fn handle<T>(seconds: u64, extra: T) -> Option<()> {
    let _ = (seconds, extra);
    None
}

fn main() {}
