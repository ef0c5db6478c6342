// Any error type that implements `Display`.
use spin_trigger_sdk::timer_component;

struct Oops;

impl std::fmt::Display for Oops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("oops")
    }
}

#[timer_component]
fn handle() -> Result<(), Oops> {
    Err(Oops)
}

fn main() {}
