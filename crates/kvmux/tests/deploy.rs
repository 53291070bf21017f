//! deploy/ agrees with the binary: the Dockerfile, the systemd unit, the compose file and the
//! Kubernetes manifests use the ports, environment variable names and config paths the real
//! `kvmux` reads, and every config file they ship passes `kvmux check-config`.
//!
//! The environment names are taken from the binary's own `serve --help`, not from a list here, so
//! renaming one in the CLI without updating deploy/ fails this test. YAML is read with PyYAML
//! (`python3 -c 'import yaml'`, part of the machine image) and turned into JSON for serde.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every YAML document of `rel`, as JSON.
fn yaml_docs(rel: &str) -> Vec<Value> {
    let out = Command::new("python3")
        .arg("-c")
        .arg("import json, sys, yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))")
        .arg(repo().join(rel))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{rel} is not valid YAML (or PyYAML is missing): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).expect("json") {
        Value::Array(docs) => docs,
        other => panic!("{other}"),
    }
}

/// The KVMUX_* variables the binary itself names in its help.
fn binary_env_names() -> BTreeSet<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .args(["serve", "--help"])
        .output()
        .expect("kvmux serve --help");
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let names: BTreeSet<String> = help
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("KVMUX_"))
        .map(String::from)
        .collect();
    for expected in ["KVMUX_CONFIG", "KVMUX_LISTEN", "KVMUX_DATA_DIR"] {
        assert!(names.contains(expected), "{expected} not in: {help}");
    }
    names
}

/// Variables a deployment may set: the binary's, plus the log filter.
fn allowed_env() -> BTreeSet<String> {
    let mut names = binary_env_names();
    names.insert("RUST_LOG".into());
    names
}

/// `kvmux check-config` accepts `toml` (written to a temp file); returns its masked output.
fn check_config(what: &str, toml: &str) -> String {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("kvmux.toml");
    std::fs::write(&path, toml).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("kvmux check-config");
    assert!(
        out.status.success(),
        "{what} is refused by the binary: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn port_of(listen: &str) -> u16 {
    listen
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {listen:?}"))
}

/// The value of `key = "..."` at the top of a TOML text.
fn toml_string(toml_text: &str, key: &str) -> Option<String> {
    let table: toml::Table = toml_text.parse().expect("toml");
    table.get(key).and_then(|v| v.as_str()).map(String::from)
}

struct Dockerfile {
    env: Vec<(String, String)>,
    exposed: u16,
    binary: String,
}

fn dockerfile() -> Dockerfile {
    let text = read("deploy/Dockerfile");
    // Join continuation lines so each instruction is one line.
    let joined = text.replace("\\\n", " ");
    let mut env = Vec::new();
    let mut exposed = None;
    let mut binary = None;
    for line in joined.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("ENV ") {
            for pair in rest.split_whitespace() {
                let (k, v) = pair.split_once('=').expect("ENV k=v");
                env.push((k.to_string(), v.to_string()));
            }
        } else if let Some(rest) = line.strip_prefix("EXPOSE ") {
            exposed = rest.trim().parse().ok();
        } else if line.starts_with("COPY --from=build") {
            binary = line.split_whitespace().last().map(String::from);
        }
    }
    // Every COPY from the build context names a file that exists.
    for line in joined.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("COPY ") {
            if !rest.starts_with("--from") && !rest.starts_with(". ") {
                let src = rest.split_whitespace().next().expect("src");
                assert!(repo().join(src).exists(), "Dockerfile copies missing {src}");
            }
        }
    }
    Dockerfile {
        env,
        exposed: exposed.expect("EXPOSE"),
        binary: binary.expect("the binary's COPY"),
    }
}

fn env_value<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn the_dockerfile_uses_the_binarys_env_names_port_and_config_path() {
    let allowed = allowed_env();
    let docker = dockerfile();
    for (name, _) in &docker.env {
        assert!(allowed.contains(name), "Dockerfile sets unknown {name}");
    }
    let listen = env_value(&docker.env, "KVMUX_LISTEN").expect("KVMUX_LISTEN");
    assert_eq!(
        port_of(listen),
        docker.exposed,
        "EXPOSE matches KVMUX_LISTEN"
    );
    assert_eq!(
        env_value(&docker.env, "KVMUX_CONFIG"),
        Some("/etc/kvmux/kvmux.toml")
    );
    assert_eq!(docker.binary, "/usr/local/bin/kvmux");
    // The config baked into the image is one the binary accepts.
    check_config("config/kvmux.toml", &read("config/kvmux.toml"));
}

#[test]
fn the_systemd_unit_matches_the_image_layout() {
    let allowed = allowed_env();
    let unit = read("deploy/kvmux.service");
    let docker = dockerfile();
    let mut env = Vec::new();
    let mut exec = None;
    let mut state_dir = None;
    for line in unit.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Environment=") {
            let (k, v) = rest.split_once('=').expect("Environment=K=V");
            assert!(allowed.contains(k), "the unit sets unknown {k}");
            env.push((k.to_string(), v.to_string()));
        } else if let Some(rest) = line.strip_prefix("ExecStart=") {
            exec = Some(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("StateDirectory=") {
            state_dir = Some(rest.to_string());
        }
    }
    let exec = exec.expect("ExecStart");
    assert_eq!(exec, format!("{} serve", docker.binary));
    assert_eq!(
        env_value(&env, "KVMUX_CONFIG"),
        env_value(&docker.env, "KVMUX_CONFIG")
    );
    // systemd's StateDirectory=kvmux is /var/lib/kvmux: the data dir the unit names.
    let state_dir = state_dir.expect("StateDirectory");
    assert_eq!(
        env_value(&env, "KVMUX_DATA_DIR"),
        Some(format!("/var/lib/{state_dir}").as_str())
    );
}

#[test]
fn the_compose_file_runs_three_gateways_on_its_postgres() {
    let allowed = allowed_env();
    let compose = &yaml_docs("deploy/compose.yaml")[0];
    let services = compose["services"].as_object().expect("services");
    let postgres = &services["postgres"];
    let gateways: Vec<(&String, &Value)> = services
        .iter()
        .filter(|(name, _)| name.starts_with("kvmux"))
        .collect();
    assert_eq!(gateways.len(), 3, "three gateways");
    let mut host_ports = BTreeSet::new();
    for (name, svc) in &gateways {
        let env = svc["environment"].as_object().expect("environment");
        for key in env.keys() {
            assert!(allowed.contains(key), "{name} sets unknown {key}");
        }
        let listen = env["KVMUX_LISTEN"].as_str().expect("KVMUX_LISTEN");
        let config_path = env["KVMUX_CONFIG"].as_str().expect("KVMUX_CONFIG");
        let mut mounted = None;
        for volume in svc["volumes"].as_array().expect("volumes") {
            let spec = volume.as_str().expect("short volume syntax");
            let parts: Vec<&str> = spec.split(':').collect();
            if parts.get(1) == Some(&config_path) {
                mounted = Some(parts[0].to_string());
            }
        }
        let mounted = mounted.unwrap_or_else(|| panic!("{name} mounts no file at {config_path}"));
        let config_text = read(&format!("deploy/{}", mounted.trim_start_matches("./")));
        check_config(&mounted, &config_text);
        // The gateway listens where its port mapping points.
        for mapping in svc["ports"].as_array().expect("ports") {
            let mapping = mapping.as_str().expect("port string");
            let container_port: u16 = mapping.rsplit(':').next().unwrap().parse().unwrap();
            assert_eq!(container_port, port_of(listen), "{name}: {mapping}");
            host_ports.insert(mapping.to_string());
        }
        // The storage URL names the compose database with its user, password and name.
        let storage = toml_string(&config_text, "storage").expect("storage");
        let pg_env = postgres["environment"].as_object().expect("postgres env");
        let expected = format!(
            "postgres://{}:{}@postgres:5432/{}",
            pg_env["POSTGRES_USER"].as_str().unwrap(),
            pg_env["POSTGRES_PASSWORD"].as_str().unwrap(),
            pg_env["POSTGRES_DB"].as_str().unwrap()
        );
        assert_eq!(storage, expected);
        assert_eq!(
            svc["depends_on"]["postgres"]["condition"], "service_healthy",
            "{name} waits for the database"
        );
    }
    assert_eq!(host_ports.len(), 3, "distinct host ports: {host_ports:?}");
    // The build uses the Dockerfile checked above.
    assert_eq!(
        gateways[0].1["build"]["dockerfile"].as_str(),
        Some("deploy/Dockerfile")
    );
}

#[test]
fn the_kubernetes_manifests_agree_with_each_other_and_the_binary() {
    let allowed = allowed_env();
    let dir = repo().join("deploy/kubernetes");
    let mut docs = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let rel = file
            .strip_prefix(repo())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        docs.extend(yaml_docs(&rel));
    }
    let find = |kind: &str| -> &Value {
        docs.iter()
            .find(|d| d["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} manifest"))
    };
    let deployment = find("Deployment");
    let service = find("Service");
    let config_map = find("ConfigMap");
    let secret = find("Secret");
    let pdb = find("PodDisruptionBudget");

    let pod = &deployment["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(&service["spec"]["selector"], labels);
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);
    let replicas = deployment["spec"]["replicas"].as_i64().unwrap();
    let min_available = pdb["spec"]["minAvailable"].as_i64().unwrap();
    assert!(
        replicas > min_available && min_available >= 1,
        "a drain must be possible and leave gateways serving"
    );

    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["args"][0], "serve");
    // Environment: from the ConfigMap, names the binary reads.
    assert_eq!(
        container["envFrom"][0]["configMapRef"]["name"],
        config_map["metadata"]["name"]
    );
    let env = config_map["data"].as_object().expect("data");
    for key in env.keys() {
        assert!(allowed.contains(key), "ConfigMap sets unknown {key}");
    }
    // Ports: the listen port is the container port, which the probes and the Service target.
    let listen_port = port_of(env["KVMUX_LISTEN"].as_str().expect("KVMUX_LISTEN"));
    let port = &container["ports"][0];
    assert_eq!(port["containerPort"].as_u64(), Some(listen_port as u64));
    let port_name = port["name"].as_str().expect("named port");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port_name);
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["port"], port_name, "{probe}");
        assert_eq!(
            container[probe]["httpGet"]["path"], "/_kvmux/health",
            "{probe}"
        );
    }
    // Config: the Secret's file is mounted exactly where KVMUX_CONFIG points.
    let config_path = env["KVMUX_CONFIG"].as_str().expect("KVMUX_CONFIG");
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == config_path)
        .unwrap_or_else(|| panic!("nothing mounted at {config_path}"));
    let volume = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume");
    assert_eq!(volume["secret"]["secretName"], secret["metadata"]["name"]);
    let key = mount["subPath"].as_str().expect("subPath");
    let config_text = secret["stringData"][key].as_str().expect("the config");
    check_config("the Secret's kvmux.toml", config_text);
    let storage = toml_string(config_text, "storage").expect("storage");
    assert!(storage.starts_with("postgres://"), "{storage}");
    // The config's own listen agrees with the environment that overrides it.
    assert_eq!(
        toml_string(config_text, "listen").map(|l| port_of(&l)),
        Some(listen_port)
    );
}
