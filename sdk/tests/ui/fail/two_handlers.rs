use spin_trigger_sdk::timer_component;

#[timer_component]
fn first() {}

mod elsewhere {
    use spin_trigger_sdk::timer_component;

    #[timer_component]
    fn second() {}
}

fn main() {}
