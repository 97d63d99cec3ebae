//! The deploy artefacts, checked offline and held to the code: the
//! `Dockerfile` (hadolint), `deploy/k8s` (kustomize's build validated against
//! Kubernetes' schemas, the PrometheusRule made from the alert rules and
//! checked by promtool) and `deploy/compose` (the compose specification's
//! schema); then what they say about the bridge: probe paths are its routes,
//! the Ingress routes only public ones with the nginx template's settings,
//! ports agree with the image's, and the grace period exceeds the stop
//! budget of the configuration shipped. The tools are pinned and installed
//! by `make deps` (`deploy-tools`); no container engine or cluster is needed.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crm_bridge::config::Config;
use serde_json::Value;
use support::{Broker, TestBridge, repo_path};

/// The Kubernetes version the manifests are validated against: one that
/// managed clusters still widely run (kubernetes-validate bundles schemas
/// up to 1.37), so the manifests use nothing newer.
const KUBERNETES_VERSION: &str = "1.34.0";

/// Served on the internal port only: never routed by the Ingress.
const INTERNAL_PATHS: [&str; 3] = ["/metrics", "/stats", "/readyz"];

/// Where `make deps` puts the tools (the Makefile's `DEPLOY_TOOLS`).
fn tools() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/crm-bridge/deploy-tools")
}

/// A tool of the pinned venv, checked to hold deploy/requirements.txt.
fn venv_tool(name: &str) -> PathBuf {
    let venv = tools().join("venv");
    let wanted = std::fs::read_to_string(repo_path("deploy/requirements.txt")).unwrap();
    let held = std::fs::read_to_string(venv.join("requirements.txt")).unwrap_or_default();
    assert!(
        held == wanted,
        "{} does not hold deploy/requirements.txt: run `make deploy-tools` (or `make deps`)",
        venv.display()
    );
    venv.join("bin").join(name)
}

/// Runs `program` in the repository; its output, or a failure that says
/// what it said.
fn run(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(repo_path(""))
        .output()
        .unwrap_or_else(|e| panic!("{} ({e}): run `make deploy-tools`", program.display()));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{said}",
        program.display()
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The documents of a YAML file (or stream), as JSON.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let script = "import json, sys, yaml\n\
                  print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))";
    let path = path.to_str().unwrap();
    serde_json::from_str(&run(&venv_tool("python"), &["-c", script, path])).unwrap()
}

/// A directory of its own under the system's temporary one, removed when
/// dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("crm-bridge-deploy-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What `kubectl apply -k deploy/k8s` applies, validated against the
/// Kubernetes schemas (strict: unknown fields are errors; the two Prometheus
/// Operator kinds have no schema there and are checked below instead).
/// Built once per test binary.
fn k8s_resources() -> &'static [Value] {
    static BUILT: OnceLock<Vec<Value>> = OnceLock::new();
    BUILT.get_or_init(build_k8s)
}

fn build_k8s() -> Vec<Value> {
    let built = run(&tools().join("kustomize"), &["build", "deploy/k8s"]);
    let dir = TempDir::new();
    let file = dir.0.join("built.yaml");
    std::fs::write(&file, built).unwrap();
    let args = ["-k", KUBERNETES_VERSION, "--strict", "--quiet"];
    let file_arg = file.to_str().unwrap();
    run(
        &venv_tool("kubernetes-validate"),
        &[&args[..], &[file_arg]].concat(),
    );
    yaml_docs(&file)
}

fn resource<'a>(resources: &'a [Value], kind: &str, name: &str) -> &'a Value {
    resources
        .iter()
        .find(|r| r["kind"] == kind && r["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("deploy/k8s has no {kind} {name}"))
}

fn container(resources: &[Value]) -> &Value {
    &resource(resources, "StatefulSet", "crm-bridge")["spec"]["template"]["spec"]["containers"][0]
}

/// A container port by name.
fn container_port(resources: &[Value], name: &str) -> u16 {
    let ports = container(resources)["ports"].as_array().unwrap();
    let port = ports.iter().find(|p| p["name"] == name);
    let port = port.unwrap_or_else(|| panic!("the container has no port {name}"));
    port["containerPort"].as_u64().unwrap() as u16
}

/// The `NAME=value` the Dockerfile's runtime stage sets, as an address.
fn image_env(name: &str) -> SocketAddr {
    let dockerfile = std::fs::read_to_string(repo_path("Dockerfile")).unwrap();
    let prefix = format!("{name}=");
    let value = dockerfile
        .split_whitespace()
        .find_map(|word| word.strip_prefix(&prefix));
    let value = value.unwrap_or_else(|| panic!("the Dockerfile sets no ENV {name}"));
    value.parse().unwrap()
}

/// The image's public and internal ports, with its EXPOSE agreeing.
fn image_ports() -> (u16, u16) {
    let public = image_env("CRM_BRIDGE_LISTEN");
    let internal = image_env("CRM_BRIDGE_INTERNAL_LISTEN");
    for addr in [public, internal] {
        assert!(
            addr.ip().is_unspecified(),
            "{addr}: a container listens on all interfaces"
        );
    }
    let dockerfile = std::fs::read_to_string(repo_path("Dockerfile")).unwrap();
    let exposed: BTreeSet<u16> = dockerfile
        .lines()
        .filter_map(|line| line.strip_prefix("EXPOSE "))
        .flat_map(|ports| ports.split_whitespace().map(|p| p.parse().unwrap()))
        .collect();
    assert_eq!(exposed, BTreeSet::from([public.port(), internal.port()]));
    (public.port(), internal.port())
}

/// The image's numeric user (its runtime stage's `USER uid:gid`).
fn image_user() -> (u64, u64) {
    let dockerfile = std::fs::read_to_string(repo_path("Dockerfile")).unwrap();
    let user = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back();
    let (uid, gid) = user
        .expect("the Dockerfile sets a USER")
        .split_once(':')
        .unwrap();
    (uid.parse().unwrap(), gid.parse().unwrap())
}

/// The image's environment sets `listen` and `internal_listen`, and the
/// environment overrides the file: a value there would be dead and misleading.
fn assert_leaves_addresses_to_the_image(toml_text: &str, what: &str) {
    let table: toml::Table = toml::from_str(toml_text).unwrap();
    for key in ["listen", "internal_listen"] {
        assert!(
            !table.contains_key(key),
            "{what} sets {key}, which the image's ENV overrides: set it there (Dockerfile)"
        );
    }
}

#[test]
fn the_dockerfile_passes_hadolint() {
    run(
        &venv_tool("hadolint"),
        &["--config", ".hadolint.yaml", "Dockerfile"],
    );
}

#[test]
fn the_prometheus_rule_is_the_alert_rules_and_passes_promtool() {
    let generated = run(Path::new("bash"), &["deploy/k8s/prometheus-rule.sh"]);
    let checked_in = std::fs::read_to_string(repo_path("deploy/k8s/prometheus-rule.yaml")).unwrap();
    assert!(
        generated == checked_in,
        "deploy/k8s/prometheus-rule.yaml is stale: run `make deploy/k8s/prometheus-rule.yaml`"
    );
    let rule = yaml_docs(&repo_path("deploy/k8s/prometheus-rule.yaml"));
    assert_eq!(rule[0]["kind"], "PrometheusRule");
    // The groups as a rules file (JSON is YAML), for promtool.
    let dir = TempDir::new();
    let rules = dir.0.join("rules.json");
    std::fs::write(&rules, rule[0]["spec"].to_string()).unwrap();
    let checked = run(
        Path::new("promtool"),
        &["check", "rules", rules.to_str().unwrap()],
    );
    assert!(checked.contains("SUCCESS"), "{checked}");
}

#[test]
fn the_compose_file_follows_the_compose_specification() {
    let schema = ["--builtin-schema", "vendor.compose-spec"];
    let file = "deploy/compose/compose.yaml";
    run(
        &venv_tool("check-jsonschema"),
        &[&schema[..], &[file]].concat(),
    );
}

#[test]
fn kubernetes_ports_probes_and_monitoring_agree_with_the_image() {
    let (public, internal) = image_ports();
    let resources = k8s_resources();
    assert_eq!(container_port(resources, "http"), public);
    assert_eq!(container_port(resources, "internal"), internal);

    let pod = &resource(resources, "StatefulSet", "crm-bridge")["spec"]["template"]["spec"];
    let (uid, gid) = image_user();
    assert_eq!(pod["securityContext"]["runAsUser"], uid);
    assert_eq!(pod["securityContext"]["runAsGroup"], gid);

    let bridge = container(resources);
    for (probe, path) in [
        ("startupProbe", "/readyz"),
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
    ] {
        let get = &bridge[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(get["port"], "internal", "{probe} asks the internal port");
    }

    // Each Service port reaches the container port of its name.
    for service in ["crm-bridge", "crm-bridge-headless"] {
        let spec = &resource(resources, "Service", service)["spec"];
        for port in spec["ports"].as_array().unwrap() {
            let target = port["targetPort"].as_str().unwrap();
            container_port(resources, target);
            assert_eq!(
                port["name"], target,
                "{service}: ports named as their targets"
            );
        }
    }
    let public_service = &resource(resources, "Service", "crm-bridge")["spec"];
    let targets: Vec<&Value> = public_service["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["targetPort"])
        .collect();
    assert_eq!(
        targets,
        ["http"],
        "the public Service exposes the public port only"
    );

    // Prometheus scrapes /metrics on the internal port, job "crm-bridge".
    let monitor = &resource(resources, "ServiceMonitor", "crm-bridge")["spec"];
    assert_eq!(monitor["endpoints"][0]["port"], "internal");
    assert_eq!(monitor["endpoints"][0]["path"], "/metrics");
    let headless = &resource(resources, "Service", "crm-bridge-headless")["metadata"];
    let job_label = monitor["jobLabel"].as_str().unwrap();
    assert_eq!(headless["labels"][job_label], "crm-bridge");

    // The Ingress reaches the public Service's public port.
    let ingress = &resource(resources, "Ingress", "crm-bridge")["spec"];
    for path in ingress["rules"][0]["http"]["paths"].as_array().unwrap() {
        let backend = &path["backend"]["service"];
        assert_eq!(backend["name"], "crm-bridge");
        assert_eq!(backend["port"]["name"], "http");
    }
}

#[test]
fn the_pods_get_the_config_the_secrets_and_their_node_id() {
    let resources = k8s_resources();
    let pod = &resource(resources, "StatefulSet", "crm-bridge")["spec"]["template"]["spec"];
    let bridge = &pod["containers"][0];
    let env = |name: &str| {
        let vars = bridge["env"].as_array().unwrap();
        vars.iter().find(|v| v["name"] == name).cloned()
    };
    let node_id = env("CRM_BRIDGE_KAFKA__NODE_ID").expect("the node id from the pod");
    assert_eq!(
        node_id["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    let config_path = env("CRM_BRIDGE_CONFIG").unwrap()["value"].clone();

    let volume = |name: &str| {
        let volumes = pod["volumes"].as_array().unwrap();
        volumes.iter().find(|v| v["name"] == name).unwrap().clone()
    };
    let mount = |name: &str| {
        let mounts = bridge["volumeMounts"].as_array().unwrap();
        mounts.iter().find(|m| m["name"] == name).unwrap().clone()
    };
    assert_eq!(mount("config")["mountPath"], config_path);
    // kustomize named the ConfigMap after its content, and the pod after it.
    let config_map = volume("config")["configMap"]["name"].clone();
    let config_map = resource(resources, "ConfigMap", config_map.as_str().unwrap());
    let secret = volume("secrets")["secret"]["secretName"].clone();
    let secret = resource(resources, "Secret", secret.as_str().unwrap());
    let secrets_dir = mount("secrets")["mountPath"].as_str().unwrap().to_owned();

    let toml_text = config_map["data"]["bridge.toml"].as_str().unwrap();
    assert_leaves_addresses_to_the_image(toml_text, "deploy/k8s/bridge.toml");
    // The bridge reads every `*_file` the config names from the Secret's
    // keys: lay them out as the pod would, and load the config as it does.
    let dir = TempDir::new();
    for (key, value) in secret["stringData"].as_object().unwrap() {
        std::fs::write(dir.0.join(key), value.as_str().unwrap()).unwrap();
    }
    let relocated = toml_text.replace(&secrets_dir, dir.0.to_str().unwrap());
    assert_ne!(
        relocated, toml_text,
        "the config reads its secrets from files"
    );
    let file = dir.0.join("bridge.toml");
    std::fs::write(&file, relocated).unwrap();
    let config = Config::load(Some(&file)).expect("deploy/k8s/bridge.toml loads, with the Secret");
    assert!(config.auth.jwt.hs_secret.is_some());
    assert!(config.schemas.registry_password.is_some());
    assert!(config.kafka.properties.contains_key("sasl.password"));

    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    let budget = crm_bridge::app::stop_budget(&config);
    assert!(
        grace as f64 > budget.as_secs_f64(),
        "terminationGracePeriodSeconds {grace} must exceed the bridge's stop budget {budget:?}"
    );

    // The readiness probe sees a draining node (503 from SIGTERM on) and
    // the endpoint is removed before the node stops accepting: its worst
    // case, a probe just before SIGTERM then `failureThreshold` failures,
    // each up to its timeout, stays within the drain delay.
    let readiness = &container(resources)["readinessProbe"];
    let seconds = |key: &str, default: u64| readiness[key].as_u64().unwrap_or(default);
    let noticed = seconds("periodSeconds", 10) * seconds("failureThreshold", 3)
        + seconds("timeoutSeconds", 1);
    assert!(
        noticed < config.drain.delay_seconds,
        "the readiness probe takes up to {noticed} s to notice a drain, \
         not within drain.delay_seconds = {}",
        config.drain.delay_seconds
    );
}

#[test]
fn the_ingress_matches_the_nginx_template() {
    let template =
        std::fs::read_to_string(repo_path("deploy/nginx/crm-bridge.conf.template")).unwrap();
    let directive = |name: &str| {
        let value = template.lines().find_map(|line| {
            let rest = line.trim().strip_prefix(name)?.strip_prefix(' ')?;
            Some(rest.trim_end_matches(';').to_owned())
        });
        value.unwrap_or_else(|| panic!("the nginx template has no {name}"))
    };
    let resources = k8s_resources();
    let ingress = &resource(resources, "Ingress", "crm-bridge")["metadata"]["annotations"];
    let annotation = |name: &str| {
        let key = format!("nginx.ingress.kubernetes.io/{name}");
        ingress[key.as_str()]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let seconds = |value: String| value.trim_end_matches('s').to_owned();
    assert_eq!(
        annotation("proxy-read-timeout"),
        seconds(directive("proxy_read_timeout"))
    );
    assert_eq!(
        annotation("proxy-send-timeout"),
        seconds(directive("proxy_send_timeout"))
    );
    assert_eq!(
        annotation("proxy-body-size"),
        directive("client_max_body_size")
    );
    assert_eq!(annotation("proxy-buffering"), directive("proxy_buffering"));
    // ingress-nginx hashes consistently, as the template's `consistent`.
    assert_eq!(
        format!("{} consistent", annotation("upstream-hash-by")),
        directive("hash")
    );
}

#[test]
fn compose_ports_agree_with_the_image() {
    let (public, internal) = image_ports();
    let compose = &yaml_docs(&repo_path("deploy/compose/compose.yaml"))[0]["services"];
    let services = compose.as_object().unwrap();
    let bridges: BTreeSet<String> = services
        .iter()
        .filter(|(_, s)| s["environment"]["CRM_BRIDGE_KAFKA__NODE_ID"].is_string())
        .map(|(name, _)| name.clone())
        .collect();
    assert_eq!(bridges.len(), 2, "two bridges: {bridges:?}");
    let addresses =
        |port: u16| -> BTreeSet<String> { bridges.iter().map(|b| format!("{b}:{port}")).collect() };

    // nginx balances over both bridges' public port and publishes the port
    // it renders its template with.
    let nginx = &compose["nginx"];
    let upstreams = nginx["environment"]["CRM_BRIDGE_UPSTREAM_SERVERS"]
        .as_str()
        .unwrap();
    let upstreams: BTreeSet<String> = upstreams
        .split(';')
        .filter_map(|s| s.trim().strip_prefix("server "))
        .map(|server| {
            let (address, parameters) = server.split_once(' ').unwrap_or((server, ""));
            // deploy/nginx/README.md: rolling restarts need it.
            assert_eq!(parameters, "max_fails=0", "{server}");
            address.to_owned()
        })
        .collect();
    assert_eq!(upstreams, addresses(public));
    let listen = nginx["environment"]["CRM_BRIDGE_LISTEN"].as_str().unwrap();
    let published = nginx["ports"][0].as_str().unwrap();
    assert!(
        published.ends_with(&format!(":{listen}")),
        "nginx listens on {listen} but publishes {published}"
    );

    // Prometheus scrapes both bridges' internal port.
    let prometheus = &yaml_docs(&repo_path("deploy/compose/prometheus.yml"))[0];
    let targets = &prometheus["scrape_configs"][0]["static_configs"][0]["targets"];
    let targets: BTreeSet<String> = serde_json::from_value(targets.clone()).unwrap();
    assert_eq!(targets, addresses(internal));

    // The bridges' config loads as they load it.
    let toml_text = std::fs::read_to_string(repo_path("deploy/compose/bridge.toml")).unwrap();
    assert_leaves_addresses_to_the_image(&toml_text, "deploy/compose/bridge.toml");
    Config::load(Some(&repo_path("deploy/compose/bridge.toml"))).unwrap();
}

/// A request below an Ingress path that the bridge serves on its public port.
const PUBLIC_ROUTES: [&str; 6] = [
    "/",
    "/healthz",
    "/web/app.js",
    crm_bridge::http::CLIENT_MODULE_PATH,
    crm_bridge::http::ASYNCAPI_PATH,
    "/socket.io/?EIO=4&transport=polling",
];

/// Whether an Ingress path of `path_type` matches request path `path`
/// (Kubernetes' rules: `Prefix` matches whole path elements).
fn ingress_matches(path_type: &str, prefix: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap();
    match path_type {
        "Exact" => path == prefix,
        "Prefix" => {
            let prefix = prefix.trim_end_matches('/');
            path == prefix || path.starts_with(&format!("{prefix}/"))
        }
        other => panic!("pathType {other}: use Exact or Prefix"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_paths_are_routes_and_the_ingress_routes_only_public_ones() {
    let resources = k8s_resources();
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let internal_url = bridge.internal_url.clone();
    let status = async |url: String| reqwest::get(&url).await.unwrap().status().as_u16();

    let container = container(resources);
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let get = &container[probe]["httpGet"];
        let base = match get["port"].as_str().unwrap() {
            "internal" => &internal_url,
            _ => &bridge.url,
        };
        let path = get["path"].as_str().unwrap();
        let code = status(format!("{base}{path}")).await;
        assert!(code == 200 || code == 503, "{probe} {path} answered {code}");
    }

    let ingress = &resource(resources, "Ingress", "crm-bridge")["spec"];
    for rule in ingress["rules"][0]["http"]["paths"].as_array().unwrap() {
        let (kind, path) = (
            rule["pathType"].as_str().unwrap(),
            rule["path"].as_str().unwrap(),
        );
        for internal in INTERNAL_PATHS {
            assert!(
                !ingress_matches(kind, path, internal),
                "the Ingress path {path} ({kind}) routes {internal}"
            );
        }
        let routes: Vec<&str> = PUBLIC_ROUTES
            .into_iter()
            .filter(|route| ingress_matches(kind, path, route))
            .collect();
        assert!(
            !routes.is_empty(),
            "the Ingress path {path} ({kind}) leads to no route"
        );
        for route in routes {
            let code = status(format!("{}{route}", bridge.url)).await;
            assert_eq!(code, 200, "{route}, under the Ingress path {path}");
        }
    }
    bridge.stop().await;
}
