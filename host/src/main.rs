//! `spin-trigger-host`: runs the timer, Redis and Redis Streams triggers of a Spin app. The
//! command line is [`spin_trigger_host::cli`].

fn main() -> std::process::ExitCode {
    spin_trigger_host::cli::main()
}
