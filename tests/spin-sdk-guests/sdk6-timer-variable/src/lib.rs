//! A timer component as Spin's timer example writes one — plain wit-bindgen exporting
//! `fermyon:example/spin-timer` — that reads a variable through spin-sdk 6's `variables`
//! module, which imports `spin:variables/variables@3.0.0` (an `async func`).

use spin_sdk::wit_bindgen;

wit_bindgen::generate!({
    inline: r#"
        package fermyon:example;
        world spin-timer {
            export handle-timer-request: func();
        }
    "#,
    runtime_path: "spin_sdk::wit_bindgen::rt",
});

struct Timer;

impl Guest for Timer {
    fn handle_timer_request() {
        // The export is synchronous; spin-sdk's calls are async.
        match wit_bindgen::block_on(spin_sdk::variables::get("greeting")) {
            Ok(greeting) => println!("greeting={greeting}"),
            Err(error) => eprintln!("no greeting: {error}"),
        }
    }
}

export!(Timer);
