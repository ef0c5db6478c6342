//! `examples/kubernetes/`: the ConfigMap, Deployment and KEDA ScaledObject parse, refer to each
//! other by the right names, and agree with what the host does: the ConfigMap's `spin.toml`, run
//! with the Deployment's environment against a local redis-server, makes the consumer group the
//! ScaledObject reads, and serves the lag and pending-age metrics.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{HostProcess, RedisServer, free_port, guest, http_get, workspace_root};
use redis::Commands;
use yaml_rust2::{Yaml, YamlLoader};

/// The one YAML document of `examples/kubernetes/<file>`.
fn document(file: &str) -> Yaml {
    let path = workspace_root().join("examples/kubernetes").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{file}: {error}"));
    let mut documents =
        YamlLoader::load_from_str(&text).unwrap_or_else(|error| panic!("{file}: {error}"));
    assert_eq!(documents.len(), 1, "{file} holds one object");
    documents.remove(0)
}

/// The string at `path` (keys, and indices for lists) in `yaml`.
fn text<'a>(yaml: &'a Yaml, path: &[&str]) -> &'a str {
    let mut at = yaml;
    for step in path {
        at = match step.parse::<usize>() {
            Ok(index) => &at[index],
            Err(_) => &at[*step],
        };
    }
    at.as_str()
        .unwrap_or_else(|| panic!("no string at {path:?}: {at:?}"))
}

/// The Deployment's container's environment, by name.
fn environment(deployment: &Yaml) -> BTreeMap<String, String> {
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    container["env"]
        .as_vec()
        .expect("an env list")
        .iter()
        .map(|variable| {
            (
                text(variable, &["name"]).to_owned(),
                text(variable, &["value"]).to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_kubernetes_example_refers_to_itself_and_to_what_the_host_names() {
    let (config_map, deployment, scaled) = (
        document("configmap.yaml"),
        document("deployment.yaml"),
        document("scaledobject.yaml"),
    );
    assert_eq!(text(&config_map, &["kind"]), "ConfigMap");
    assert_eq!(text(&deployment, &["kind"]), "Deployment");
    assert_eq!(text(&scaled, &["kind"]), "ScaledObject");
    assert_eq!(text(&scaled, &["apiVersion"]), "keda.sh/v1alpha1");

    // The ScaledObject scales the Deployment, which mounts the ConfigMap.
    let name = text(&deployment, &["metadata", "name"]);
    assert_eq!(text(&scaled, &["spec", "scaleTargetRef", "name"]), name);
    let pod = &deployment["spec"]["template"];
    assert_eq!(
        text(pod, &["metadata", "labels", "app"]),
        text(&deployment, &["spec", "selector", "matchLabels", "app"])
    );
    let volume = &pod["spec"]["volumes"][0];
    assert_eq!(
        text(volume, &["configMap", "name"]),
        text(&config_map, &["metadata", "name"])
    );
    let container = &pod["spec"]["containers"][0];
    let mount = &container["volumeMounts"][0];
    assert_eq!(text(mount, &["name"]), text(volume, &["name"]));
    assert_eq!(text(mount, &["subPath"]), "spin.toml");
    let args: Vec<&str> = container["args"]
        .as_vec()
        .expect("args")
        .iter()
        .map(|arg| arg.as_str().expect("a string"))
        .collect();
    assert_eq!(
        &args[..3],
        ["up", "-f", text(mount, &["mountPath"])],
        "the host runs the mounted manifest"
    );
    let shutdown = args
        .iter()
        .position(|arg| *arg == "--shutdown-timeout")
        .map(|at| humantime::parse_duration(args[at + 1]).expect("a duration"))
        .unwrap_or(Duration::from_secs(10));
    let grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        Duration::from_secs(grace as u64) > shutdown,
        "Kubernetes waits longer than the host's --shutdown-timeout ({shutdown:?}) before SIGKILL"
    );

    // The metrics port and the probes are the host's.
    let env = environment(&deployment);
    let metrics_port = env["SPIN_TRIGGER_METRICS_ADDR"]
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        container["ports"][0]["containerPort"]
            .as_i64()
            .map(|port| port.to_string()),
        Some(metrics_port)
    );
    assert_eq!(
        text(container, &["readinessProbe", "httpGet", "path"]),
        "/readyz"
    );
    assert_eq!(
        text(container, &["livenessProbe", "httpGet", "path"]),
        "/healthz"
    );

    // Each KEDA trigger reads the stream and group the host serves, on its server.
    let (stream, group) = stream_and_group(&config_map, &env);
    let address = env["SPIN_VARIABLE_REDIS_ADDRESS"]
        .strip_prefix("redis://")
        .expect("a redis:// address");
    let triggers = scaled["spec"]["triggers"].as_vec().expect("triggers");
    assert!(!triggers.is_empty());
    for trigger in triggers {
        assert_eq!(text(trigger, &["type"]), "redis-streams");
        assert_eq!(text(trigger, &["metadata", "stream"]), stream);
        assert_eq!(text(trigger, &["metadata", "consumerGroup"]), group);
        assert_eq!(text(trigger, &["metadata", "address"]), address);
    }
}

/// The stream the ConfigMap's app reads, and the group the host names for it with the
/// Deployment's environment: its `group`, else the app's name with `@<SPIN_TRIGGER_NAMESPACE>`.
fn stream_and_group(config_map: &Yaml, env: &BTreeMap<String, String>) -> (String, String) {
    let manifest: toml::Table = text(config_map, &["data", "spin.toml"])
        .parse()
        .expect("the ConfigMap's spin.toml parses");
    let trigger = &manifest["trigger"]["redis-stream"][0];
    let stream = trigger["stream"].as_str().expect("stream").to_owned();
    let group = match trigger.get("group") {
        Some(group) => group.as_str().expect("group").to_owned(),
        None => {
            let app = manifest["application"]["name"].as_str().expect("name");
            match env.get("SPIN_TRIGGER_NAMESPACE") {
                Some(namespace) => format!("{app}@{namespace}"),
                None => app.to_owned(),
            }
        }
    };
    (stream, group)
}

/// The ConfigMap's app, with the Deployment's environment (its Redis address pointed at a local
/// server, its metrics at a loopback port), under the host: the group Redis holds is the one the
/// ScaledObject reads, and `/metrics` has its lag, pending count and oldest pending entry's age.
#[test]
fn the_example_app_makes_the_group_the_scaled_object_reads_and_serves_its_backlog() {
    let (config_map, deployment, scaled) = (
        document("configmap.yaml"),
        document("deployment.yaml"),
        document("scaledobject.yaml"),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spin.toml"),
        text(&config_map, &["data", "spin.toml"]),
    )
    .unwrap();
    // The component the image would hold: a test guest that records each entry it handles.
    std::fs::copy(guest("stream-record-guest"), dir.path().join("orders.wasm")).unwrap();
    let server = RedisServer::start();
    let port = free_port();
    let mut env = environment(&deployment);
    env.insert("SPIN_VARIABLE_REDIS_ADDRESS".into(), server.url());
    env.insert(
        "SPIN_TRIGGER_METRICS_ADDR".into(),
        format!("127.0.0.1:{port}"),
    );
    env.remove("SPIN_TRIGGER_LOG_FORMAT");
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    let manifest = dir.path().join("spin.toml").display().to_string();
    let host = HostProcess::start(&["up", "-f", &manifest], &env);
    host.wait_until_ready();

    let mut redis = server.client().get_connection().unwrap();
    let stream = text(&scaled, &["spec", "triggers", "0", "metadata", "stream"]);
    for n in 0..20 {
        let _: String = redis
            .xadd(stream, "*", &[("payload", n.to_string())])
            .unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while redis.scard::<_, usize>("handled").unwrap() < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the entries were not handled"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let groups: redis::streams::StreamInfoGroupsReply = redis.xinfo_groups(stream).unwrap();
    let names: Vec<&str> = groups
        .groups
        .iter()
        .map(|group| group.name.as_str())
        .collect();
    assert_eq!(
        names,
        [text(
            &scaled,
            &["spec", "triggers", "0", "metadata", "consumerGroup"]
        )],
        "the host made the group KEDA reads"
    );

    // An entry whose handler takes 4 s stays pending: its age grows past a second.
    let _: String = redis
        .xadd(stream, "*", &[("payload", "slow"), ("sleep_ms", "4000")])
        .unwrap();
    let series = format!("group=\"{}\"", names[0]);
    let value = |metrics: &str, name: &str| -> Option<f64> {
        metrics
            .lines()
            .find(|line| line.starts_with(name) && line.contains(&series))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let (_, metrics) = http_get(port, "/metrics").expect("/metrics answers");
        if value(&metrics, "spin_trigger_stream_lag_entries").is_some()
            && value(&metrics, "spin_trigger_stream_pending_entries") == Some(1.0)
            && value(&metrics, "spin_trigger_stream_oldest_pending_age_seconds")
                .is_some_and(|age| (1.0..10.0).contains(&age))
        {
            break metrics;
        }
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(metrics.contains("# HELP spin_trigger_stream_oldest_pending_age_seconds"));
    // Stopped once the slow entry is handled: what is measured here is the backlog, not how
    // long a loaded machine takes to end a 4 s handler within the shutdown deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while redis.scard::<_, usize>("handled").unwrap() < 21 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow entry was not handled"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let run = host.stop();
    assert!(run.success, "{}", run.stderr);
}
