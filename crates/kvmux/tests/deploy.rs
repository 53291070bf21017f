//! deploy/ agrees with the binary: the Dockerfile, the systemd unit, the compose file and the
//! Kubernetes manifests use the ports, environment variable names and config paths the real
//! `kvmux` reads, and every config file they ship passes `kvmux check-config`.
//!
//! The environment names are taken from the binary's own `serve --help`, not from a list here, so
//! renaming one in the CLI without updating deploy/ fails this test.
//!
//! No deployment ships a secret: every config in deploy/ takes its credentials' secrets from the
//! environment (`secret_env`) and requires an admin token (`[admin] require_token`), the
//! deployments pass those variables from the operator's own secret store, and the public dev
//! credentials appear nowhere. YAML is read with PyYAML
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
    for expected in [
        "KVMUX_CONFIG",
        "KVMUX_LISTEN",
        "KVMUX_DATA_DIR",
        "KVMUX_ADMIN_TOKEN",
    ] {
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

/// The variables a config's credentials read their secrets from (`secret_env`).
fn secret_env_names(toml_text: &str) -> BTreeSet<String> {
    let table: toml::Table = toml_text.parse().expect("toml");
    table
        .get("credentials")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("secret_env").and_then(|v| v.as_str()))
        .map(String::from)
        .collect()
}

/// A deployment config holds no secret: no inline credential secret (each names its
/// `secret_env`), no admin token, the public dev secret nowhere, and start-up demands a token.
fn assert_ships_no_secrets(what: &str, toml_text: &str) {
    assert!(
        !toml_text.contains("kvmuxdevsecret"),
        "{what} ships the dev secret"
    );
    let table: toml::Table = toml_text.parse().expect("toml");
    let credentials = table
        .get("credentials")
        .and_then(|c| c.as_array())
        .unwrap_or_else(|| panic!("{what} has no [[credentials]]: the dev ones would apply"));
    assert!(!credentials.is_empty(), "{what}");
    for c in credentials {
        assert!(
            c.get("secret").is_none(),
            "{what} has an inline secret: {c}"
        );
        assert!(c.get("secret_env").is_some(), "{what}: {c}");
    }
    let admin = table
        .get("admin")
        .unwrap_or_else(|| panic!("{what}: no [admin]"));
    assert!(admin.get("token").is_none(), "{what} ships an admin token");
    assert_eq!(
        admin.get("require_token").and_then(|v| v.as_bool()),
        Some(true),
        "{what} must refuse to start without an admin token"
    );
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
    /// The build-context files copied into the image, with where they go.
    copies: Vec<(String, String)>,
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
    let mut copies = Vec::new();
    for line in joined.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("COPY ") {
            if !rest.starts_with("--from") && !rest.starts_with(". ") {
                let mut words = rest.split_whitespace();
                let src = words.next().expect("src");
                assert!(repo().join(src).exists(), "Dockerfile copies missing {src}");
                copies.push((
                    src.to_string(),
                    words.last().unwrap_or_default().to_string(),
                ));
            }
        }
    }
    Dockerfile {
        env,
        exposed: exposed.expect("EXPOSE"),
        binary: binary.expect("the binary's COPY"),
        copies,
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
    // The config baked into the image is one the binary accepts, and it ships no secret (the
    // repository's config/kvmux.toml, with the dev credentials, is for a local checkout only).
    let (src, _) = docker
        .copies
        .iter()
        .find(|(_, dest)| Some(dest.as_str()) == env_value(&docker.env, "KVMUX_CONFIG"))
        .expect("the image's config file is copied where KVMUX_CONFIG points");
    assert_ne!(
        src, "config/kvmux.toml",
        "the image must not ship the dev config"
    );
    let text = read(src);
    check_config(src, &text);
    assert_ships_no_secrets(src, &text);
}

/// The image's config starts only with an admin token and every secret it names in the
/// environment, and each refusal names what is missing; with them it serves.
#[test]
fn the_image_config_starts_only_with_the_operators_secrets() {
    let docker = dockerfile();
    let src = &docker
        .copies
        .iter()
        .find(|(_, dest)| dest == "/etc/kvmux/kvmux.toml")
        .expect("config copy")
        .0;
    let data = tempfile::tempdir().expect("tmp");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let secrets = secret_env_names(&read(src));
    assert!(!secrets.is_empty());
    let start = |env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvmux"));
        cmd.args(["serve", "--config"])
            .arg(repo().join(src))
            .env("KVMUX_LISTEN", format!("127.0.0.1:{port}"))
            .env("KVMUX_DATA_DIR", data.path())
            .env_remove("KVMUX_ADMIN_TOKEN")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for name in &secrets {
            cmd.env_remove(name);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().expect("kvmux serve")
    };
    let refused = |env: &[(&str, &str)], missing: &str| {
        let out = start(env).wait_with_output().expect("exit");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(missing), "{missing}: {stderr}");
    };
    refused(&[], "KVMUX_ADMIN_TOKEN");
    let token = ("KVMUX_ADMIN_TOKEN", "a-token-of-the-operators-own");
    for name in &secrets {
        refused(&[token], name);
    }
    let mut env: Vec<(&str, &str)> = secrets.iter().map(|n| (n.as_str(), "own-secret")).collect();
    env.push(token);
    let mut child = start(&env);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the image config did not start with its secrets: {status}");
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not listening");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_systemd_unit_matches_the_image_layout() {
    let allowed = allowed_env();
    let unit = read("deploy/kvmux.service");
    let docker = dockerfile();
    let mut env = Vec::new();
    let mut exec = None;
    let mut state_dir = None;
    let mut env_file = None;
    for line in unit.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Environment=") {
            let (k, v) = rest.split_once('=').expect("Environment=K=V");
            assert!(allowed.contains(k), "the unit sets unknown {k}");
            env.push((k.to_string(), v.to_string()));
        } else if let Some(rest) = line.strip_prefix("ExecStart=") {
            exec = Some(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("StateDirectory=") {
            state_dir = Some(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("EnvironmentFile=") {
            env_file = Some(rest.to_string());
        }
    }
    // Secrets (the admin token, secret_env values) come from the operator's file, which must
    // exist: a leading `-` would let the unit start without it.
    let env_file = env_file.expect("EnvironmentFile= for the operator's secrets");
    assert!(env_file.starts_with('/'), "{env_file}");
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
        let mut allowed = allowed.clone();
        allowed.extend(secret_env_names(&read("deploy/compose/kvmux.toml")));
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
        assert_ships_no_secrets(&mounted, &config_text);
        // The admin token and every secret the config reads come from the operator's shell:
        // `${NAME:?...}`, so compose refuses to start without them.
        for name in secret_env_names(&config_text)
            .into_iter()
            .chain(["KVMUX_ADMIN_TOKEN".to_string()])
        {
            let value = env
                .get(&name)
                .and_then(|v| v.as_str())
                .unwrap_or_else(|| panic!("{name} does not pass {name} through"));
            assert!(
                value.starts_with(&format!("${{{name}:?")),
                "{name} = {value}: it must be required from the operator's environment"
            );
        }
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
    assert_ships_no_secrets("the Secret's kvmux.toml", config_text);
    // The token and the credentials' secrets come from a Secret the operator creates: one that
    // is referenced but not shipped here, for each variable the binary or the config reads.
    let mut from_secrets = BTreeSet::new();
    for var in container["env"].as_array().expect("env") {
        let name = var["name"].as_str().expect("name");
        let reference = &var["valueFrom"]["secretKeyRef"];
        let source = reference["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: not from a Secret"));
        assert!(
            docs.iter()
                .all(|d| d["kind"] != "Secret" || d["metadata"]["name"] != source),
            "{name} comes from {source}, which must be the operator's, not shipped"
        );
        from_secrets.insert(name.to_string());
    }
    let mut needed = secret_env_names(config_text);
    needed.insert("KVMUX_ADMIN_TOKEN".into());
    assert_eq!(from_secrets, needed);
    let mut allowed = allowed.clone();
    allowed.extend(needed);
    for name in &from_secrets {
        assert!(allowed.contains(name), "the pod sets unknown {name}");
    }
    let storage = toml_string(config_text, "storage").expect("storage");
    assert!(storage.starts_with("postgres://"), "{storage}");
    // The config's own listen agrees with the environment that overrides it.
    assert_eq!(
        toml_string(config_text, "listen").map(|l| port_of(&l)),
        Some(listen_port)
    );
}
