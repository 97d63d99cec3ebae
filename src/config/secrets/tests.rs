use std::ffi::OsString;
use std::path::PathBuf;

use super::*;

/// A file holding `content`, removed when the test's directory is.
fn secret_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crm-bridge-secrets-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn props(pairs: &[(&str, &str)]) -> KafkaProperties {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
    pairs
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect()
}

#[test]
fn a_secret_file_is_read_without_its_final_line_break() {
    let dir = temp_dir();
    let path = secret_file(&dir, "secret", "s3cr3t with spaces \r\n");
    let mut value = None;
    let mut file = Some(path);
    resolve_secret("auth.jwt.hs_secret", &mut value, &mut file).unwrap();
    assert_eq!(value.unwrap().expose(), "s3cr3t with spaces ");
    assert!(file.is_none(), "resolved once");
}

#[test]
fn a_setting_given_twice_or_an_empty_or_missing_file_is_refused_without_its_content() {
    let dir = temp_dir();
    let path = secret_file(&dir, "secret", "hunter2");
    let mut value = Some(Secret::new("inline"));
    let error = resolve_secret("schemas.registry_password", &mut value, &mut Some(path))
        .unwrap_err()
        .to_string();
    assert!(error.contains("both set"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");

    let empty = secret_file(&dir, "empty", "\n");
    let error = resolve_secret("x", &mut None, &mut Some(empty)).unwrap_err();
    assert!(error.to_string().contains("is empty"), "{error}");

    let missing = dir.join("missing");
    let error = format!(
        "{:#}",
        resolve_secret("x", &mut None, &mut Some(missing)).unwrap_err()
    );
    assert!(error.contains("x_file: reading"), "{error}");
}

#[test]
fn property_variables_map_underscores_to_dots() {
    let properties = properties_from_env(vars(&[
        ("CRM_BRIDGE_KAFKA_PROPERTY_SASL_PASSWORD", "p=w:d"),
        ("CRM_BRIDGE_KAFKA_PROPERTY_SSL_KEY_PASSWORD_FILE", "/run/k"),
        ("crm_bridge_kafka_property_security_protocol", "SASL_SSL"),
        ("CRM_BRIDGE_KAFKA_PROPERTY_LOG_LEVEL", "7"),
        ("CRM_BRIDGE_KAFKA_PROPERTY_ENABLE_SASL_QUEUE_FILE", "/run/q"),
        ("CRM_BRIDGE_KAFKA__BROKERS", "elsewhere:9092"),
        ("PATH", "/bin"),
    ]))
    .unwrap();
    assert_eq!(
        properties,
        props(&[
            ("sasl.password", "p=w:d"),
            ("ssl.key.password.file", "/run/k"),
            ("security.protocol", "SASL_SSL"),
            ("log_level", "7"),
            ("enable_sasl_queue.file", "/run/q"),
        ])
    );
    for bad in [
        "CRM_BRIDGE_KAFKA_PROPERTY_",
        "CRM_BRIDGE_KAFKA_PROPERTY_SASL__X",
    ] {
        assert!(properties_from_env(vars(&[(bad, "v")])).is_err(), "{bad}");
    }
    assert!(is_property_variable("KAFKA_PROPERTY_SASL_PASSWORD"));
    assert!(is_property_variable("kafka_property_sasl_password"));
    assert!(!is_property_variable("kafka.properties_file"));
}

/// `_` → `.` is exact only while the properties with underscores are the
/// ones [`UNDERSCORED_PROPERTIES`] lists, and none of them reads, dotted,
/// like another property: checked against every property of this build
/// that has a value, global and topic.
#[test]
fn the_underscored_librdkafka_properties_are_the_listed_ones() {
    use rdkafka::bindings::{
        rd_kafka_conf_dump, rd_kafka_conf_dump_free, rd_kafka_topic_conf_destroy,
        rd_kafka_topic_conf_dump, rd_kafka_topic_conf_new,
    };
    let conf = rdkafka::ClientConfig::new().create_native_config().unwrap();
    let mut names = Vec::new();
    // SAFETY: `conf` and the topic configuration live across the calls;
    // each dump is an array of `count` C strings (name, value, name, ...)
    // read before it is freed with its own count.
    unsafe {
        let topic = rd_kafka_topic_conf_new();
        for (dump, count) in [
            {
                let mut count = 0;
                (rd_kafka_conf_dump(conf.ptr(), &mut count), count)
            },
            {
                let mut count = 0;
                (rd_kafka_topic_conf_dump(topic, &mut count), count)
            },
        ] {
            for i in (0..count).step_by(2) {
                let name = std::ffi::CStr::from_ptr(*dump.add(i));
                names.push(name.to_string_lossy().into_owned());
            }
            rd_kafka_conf_dump_free(dump, count);
        }
        rd_kafka_topic_conf_destroy(topic);
    }
    assert!(names.len() > 100, "{names:?}");
    assert!(names.iter().any(|n| n == "sasl.mechanisms"), "{names:?}");
    let mut underscored: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| n.contains('_'))
        .collect();
    underscored.sort_unstable();
    assert_eq!(underscored, UNDERSCORED_PROPERTIES);
    for name in UNDERSCORED_PROPERTIES {
        let dotted = name.replace('_', ".");
        assert!(!names.contains(&dotted), "{dotted} is a property too");
    }
}

#[test]
fn a_properties_file_reads_like_java_properties() {
    let text = "# a Kubernetes Secret\n\
                ! also a comment\n\
                \n\
                security.protocol=SASL_SSL\n\
                sasl.mechanism : SCRAM-SHA-512\n\
                sasl.password = p@ss=word#not-a-comment \r\n\
                sasl.jaas.config=org.apache.kafka.Login \\\n    required;\n\
                sasl.username=first\n\
                sasl.username=last\n";
    assert_eq!(
        parse_properties(text).unwrap(),
        props(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.password", "p@ss=word#not-a-comment"),
            ("sasl.jaas.config", "org.apache.kafka.Login required;"),
            ("sasl.username", "last"),
        ])
    );
    let error = parse_properties("a=1\nhunter2\n").unwrap_err();
    assert_eq!(error, "line 2: not `key=value`");
    assert!(parse_properties("=value").is_err());
}

#[test]
fn a_higher_source_replaces_a_property_in_either_form() {
    let merged = merge_under(
        props(&[("sasl.password.file", "/env"), ("client.rack", "a")]),
        props(&[
            ("sasl.password", "from-file"),
            ("client.rack", "b"),
            ("sasl.username", "u"),
        ]),
    );
    assert_eq!(
        merged,
        props(&[
            ("sasl.password.file", "/env"),
            ("client.rack", "a"),
            ("sasl.username", "u"),
        ])
    );
}

#[test]
fn properties_file_goes_under_properties_and_dot_file_values_are_read() {
    let dir = temp_dir();
    let password = secret_file(&dir, "password", "hunter2\n");
    let client_secret = secret_file(&dir, "client-secret", "oidc-secret");
    let file = secret_file(
        &dir,
        "client.properties",
        &format!(
            "security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.password.file={}\n",
            password.display()
        ),
    );
    let mut properties = props(&[
        ("sasl.mechanism", "OAUTHBEARER"),
        (
            "sasl.oauthbearer.client.secret.file",
            client_secret.to_str().unwrap(),
        ),
    ]);
    let mut properties_file = Some(file);
    resolve_kafka(&mut properties, &mut properties_file).unwrap();
    assert_eq!(
        properties,
        props(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "OAUTHBEARER"),
            ("sasl.password", "hunter2"),
            ("sasl.oauthbearer.client.secret", "oidc-secret"),
        ])
    );
    assert!(properties_file.is_none());
    let again = properties.clone();
    resolve_kafka(&mut properties, &mut properties_file).unwrap();
    assert_eq!(properties, again, "resolving twice changes nothing");

    let mut both = props(&[
        ("sasl.password", "inline"),
        ("sasl.password.file", password.to_str().unwrap()),
    ]);
    let error = resolve_kafka(&mut both, &mut None).unwrap_err().to_string();
    assert!(error.contains("both"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}

#[test]
fn a_broken_properties_file_names_the_line_not_its_content() {
    let dir = temp_dir();
    let file = secret_file(&dir, "bad.properties", "a=1\nhunter2\n");
    let error = format!(
        "{:#}",
        resolve_kafka(&mut KafkaProperties::default(), &mut Some(file)).unwrap_err()
    );
    assert!(error.contains("line 2"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}
