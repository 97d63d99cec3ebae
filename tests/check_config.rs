//! `crm-bridge check-config FILE`, the real binary: a valid configuration
//! prints as TOML with every secret redacted, wherever the secret came from
//! (inline, a secret file, a properties file, the environment); an invalid
//! one exits 1 naming the key at fault.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A directory of its own for one test's files, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("crm-bridge-check-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// Writes `content` to `name`; its path, as TOML quotes it.
    fn write(&self, name: &str, content: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `check-config file` with only `env` as its environment (none of
/// this process's `CRM_BRIDGE_*` variables).
fn check_config(file: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crm-bridge"))
        .arg("check-config")
        .arg(file)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("crm-bridge runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

const SECRETS: [&str; 6] = [
    "inline-hs-secret-0123456789abcdef0123",
    "registry-password-from-a-file",
    "sasl-password-from-a-file",
    "sasl-user-inline",
    "ssl-key-password-from-properties-file",
    "oauth-secret-from-env",
];

#[test]
fn a_valid_configuration_prints_with_every_secret_redacted() {
    let dir = Dir::new();
    let registry_password = dir.write("registry-password", &format!("{}\n", SECRETS[1]));
    let sasl_password = dir.write("sasl-password", SECRETS[2]);
    let properties = dir.write(
        "client.properties",
        &format!(
            "ssl.key.password={}\nsasl.mechanism=SCRAM-SHA-512\n",
            SECRETS[4]
        ),
    );
    let config = dir.write(
        "bridge.toml",
        &format!(
            r#"
[auth.jwt]
hs_secret = "{hs}"

[schemas]
registry_url = "https://registry.example"
registry_username = "bridge"
registry_password_file = "{registry_password}"

[kafka]
brokers = "kafka-1:9092"
properties_file = "{properties}"

[kafka.properties]
"security.protocol" = "SASL_SSL"
"sasl.username" = "{user}"
"sasl.password.file" = "{sasl_password}"
"#,
            hs = SECRETS[0],
            user = SECRETS[3],
        ),
    );
    let output = check_config(
        Path::new(&config),
        &[
            ("CRM_BRIDGE_GUARD__MAX_CONNECTIONS", "1234"),
            (
                "CRM_BRIDGE_KAFKA_PROPERTY_SASL_OAUTHBEARER_CLIENT_SECRET",
                SECRETS[5],
            ),
        ],
    );
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stderr}");
    for secret in SECRETS {
        assert!(!stdout.contains(secret), "{secret} printed:\n{stdout}");
        assert!(!stderr.contains(secret), "{secret} printed:\n{stderr}");
    }

    let printed: toml::Table = stdout.parse().expect("the output is TOML");
    let at = |path: &str| {
        path.split('/')
            .try_fold(&printed, |table, key| table.get(key)?.as_table())
            .unwrap_or_else(|| panic!("no [{path}] in\n{stdout}"))
    };
    let redacted = toml::Value::from("[redacted]");
    assert_eq!(at("auth/jwt")["hs_secret"], redacted);
    assert!(!at("auth/jwt").contains_key("hs_secret_file"), "read, gone");
    let schemas = at("schemas");
    assert_eq!(schemas["registry_password"], redacted);
    assert_eq!(schemas["registry_username"].as_str(), Some("bridge"));
    let kafka = at("kafka");
    assert_eq!(kafka["brokers"].as_str(), Some("kafka-1:9092"));
    assert!(!kafka.contains_key("properties_file"), "read, gone");
    let properties = at("kafka/properties");
    // Every source of properties, merged; the secret ones redacted.
    assert_eq!(properties["security.protocol"].as_str(), Some("SASL_SSL"));
    assert_eq!(properties["sasl.mechanism"].as_str(), Some("SCRAM-SHA-512"));
    for secret in [
        "sasl.username",
        "sasl.password",
        "ssl.key.password",
        "sasl.oauthbearer.client.secret",
    ] {
        assert_eq!(properties[secret], redacted, "{secret}");
    }
    assert!(!properties.contains_key("sasl.password.file"), "read, gone");
    // The environment over the file, defaults for the rest.
    assert_eq!(at("guard")["max_connections"].as_integer(), Some(1234));
    assert_eq!(at("kafka/topics")["deals"].as_str(), Some("crm.deals"));
}

/// A configuration that is wrong in one way, and the key it is wrong at.
struct Invalid {
    case: &'static str,
    file: String,
    env: &'static [(&'static str, &'static str)],
    key: &'static str,
}

#[test]
fn an_invalid_configuration_exits_1_naming_its_key() {
    let dir = Dir::new();
    let missing = dir.path("missing").display().to_string();
    let cases = [
        Invalid {
            case: "a wrong type",
            file: "[kafka]\nlag_refresh_seconds = \"soon\"\n".into(),
            env: &[],
            key: "kafka.lag_refresh_seconds",
        },
        Invalid {
            case: "a wrong type in the environment",
            file: String::new(),
            env: &[("CRM_BRIDGE_GUARD__MAX_CONNECTIONS", "lots")],
            key: "guard.max_connections",
        },
        Invalid {
            case: "an unknown key",
            file: "[kafka]\nbrokerz = \"kafka-1:9092\"\n".into(),
            env: &[],
            key: "kafka.brokerz",
        },
        Invalid {
            case: "a missing secret file",
            file: format!("[auth.jwt]\nhs_secret_file = \"{missing}\"\n"),
            env: &[],
            key: "auth.jwt.hs_secret_file",
        },
        Invalid {
            case: "a missing property file",
            file: format!("[kafka.properties]\n\"sasl.password.file\" = \"{missing}\"\n"),
            env: &[],
            key: "sasl.password.file",
        },
        Invalid {
            case: "a failed validation",
            file: "[kafka]\nlag_refresh_seconds = 5\nready_broker_silence_seconds = 2\n".into(),
            env: &[],
            key: "kafka.ready_broker_silence_seconds",
        },
    ];
    for Invalid {
        case,
        file,
        env,
        key,
    } in cases
    {
        let file = dir.write("bridge.toml", &file);
        let output = check_config(Path::new(&file), env);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{case}: {stderr}");
        assert!(output.stdout.is_empty(), "{case}: nothing printed as valid");
        assert!(
            stderr.to_lowercase().contains(key),
            "{case}: {key} not named in {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{case}: one line, no backtrace");
    }
}
