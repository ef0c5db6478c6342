//! `examples/embed`, run as CI runs it: its own code (the example's `run`), against a
//! `redis-server` of this test's and the guests the tests build.

mod common;

#[allow(dead_code)] // The example's `main` is its binary's, not this test's.
#[path = "../../examples/embed/src/main.rs"]
mod embed_example;

use common::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedding_example_runs_a_timer_and_a_stream_built_in_code() {
    let server = RedisServer::start();
    common::guest("redis-echo");
    let demo = embed_example::Demo {
        redis_url: server.url(),
        wasm_dir: common::guests_dir().to_path_buf(),
        entries: 5,
    };
    let report = embed_example::run(&demo).await.expect("the example runs");
    assert!(report.ticks >= 2, "{report:?}");
    assert_eq!(report.entries_handled, 5, "{report:?}");
    assert!(report.failures.is_empty(), "{report:?}");

    // Each entry was echoed through the outbound Redis API and acknowledged.
    let mut connection = server.client().get_connection().unwrap();
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg("requests")
        .arg("embed-demo")
        .query(&mut connection)
        .unwrap();
    let redis::Value::Array(summary) = pending else {
        panic!("unexpected XPENDING reply: {pending:?}");
    };
    assert_eq!(summary.first(), Some(&redis::Value::Int(0)), "{summary:?}");
}
