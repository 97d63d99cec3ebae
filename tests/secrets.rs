//! Secrets reach the real binary without sitting in its config file, its
//! command line or its environment: librdkafka properties from the
//! environment (`CRM_BRIDGE_KAFKA_PROPERTY_*`), a properties file, and a
//! `.file` property whose value is read from a file. None of it is logged.

mod support;

use support::process::BridgeProcess;
use support::{Broker, free_port};

/// A value that must appear nowhere but in its file.
const SASL_PASSWORD: &str = "env-provided-sasl-hunter2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_properties_come_from_the_environment_and_files_and_secrets_stay_out_of_logs() {
    let broker = Broker::start();
    let dir = std::env::temp_dir().join(format!("crm-bridge-secrets-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let password = dir.join("sasl-password");
    std::fs::write(&password, format!("{SASL_PASSWORD}\n")).unwrap();
    let properties = dir.join("client.properties");
    std::fs::write(
        &properties,
        "# mounted from a Kubernetes Secret\nclient.rack=rack-from-file\n",
    )
    .unwrap();
    let port = free_port();
    let node_id = "env-properties";
    // The brokers key points nowhere: the node is ready only if the
    // `bootstrap.servers` property from the environment reached librdkafka
    // (properties are applied last, over the bridge's own settings).
    let bridge = BridgeProcess::start_with_env(
        &broker,
        port,
        node_id,
        "",
        &[
            ("CRM_BRIDGE_KAFKA__BROKERS", "127.0.0.1:1"),
            ("CRM_BRIDGE_KAFKA_PROPERTY_BOOTSTRAP_SERVERS", &broker.addr),
            (
                "CRM_BRIDGE_KAFKA_PROPERTY_SASL_PASSWORD_FILE",
                password.to_str().unwrap(),
            ),
            (
                "CRM_BRIDGE_KAFKA__PROPERTIES_FILE",
                properties.to_str().unwrap(),
            ),
        ],
    )
    .await;

    let stats = bridge.stats().await;
    let librdkafka = &stats["librdkafka"];
    assert!(
        librdkafka["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("2.")),
        "{librdkafka}"
    );
    let features = librdkafka["builtinFeatures"].as_array().unwrap();
    for feature in ["ssl", "sasl_scram", "sasl_oauthbearer", "zstd"] {
        assert!(features.iter().any(|f| f == feature), "{librdkafka}");
    }

    let log = std::fs::read_to_string(BridgeProcess::log_path(port, node_id)).unwrap();
    let line = log
        .lines()
        .rfind(|line| line.contains("librdkafka") && line.contains("builtin_features"))
        .unwrap_or_else(|| panic!("no librdkafka line in the start-up log:\n{log}"));
    for name in ["bootstrap.servers", "client.rack", "sasl.password"] {
        assert!(line.contains(name), "{name} not named: {line}");
    }
    assert!(
        !log.contains(SASL_PASSWORD),
        "the secret was logged:\n{log}"
    );
    let pid = bridge.pid();
    for view in ["cmdline", "environ"] {
        let seen = std::fs::read(format!("/proc/{pid}/{view}")).unwrap();
        let seen = String::from_utf8_lossy(&seen);
        assert!(!seen.contains(SASL_PASSWORD), "the secret is in {view}");
    }
    drop(bridge);
    std::fs::remove_dir_all(dir).ok();
}
