//! The command line: `check-config` prints the effective config or where the file is wrong.

use std::process::Command;

#[test]
fn check_config_prints_the_effective_config_with_secrets_masked() {
    let out = Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .args([
            "check-config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/kvmux.toml"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:9090\""), "{text}");
    assert!(
        text.contains("AKIDkvmuxdev") && text.contains("HWkvmuxdev"),
        "{text}"
    );
    assert!(
        !text.contains("kvmuxdevsecret"),
        "a secret was printed: {text}"
    );
}

#[test]
fn check_config_names_line_and_column_of_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:9090\"\n[dialects]\ntencent = \"yes\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bad.toml:3:11:"), "{err}");
}

#[test]
fn serve_refuses_a_broken_config_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.toml");
    std::fs::write(&path, "[auth]\nmode = \"maybe\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kvmux"))
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("k.toml:2:8:"));
}

/// `check-config` ends with which mode the admin API is in and why (a TOML comment, so the output
/// stays a config file); the token is never printed.
#[test]
fn check_config_says_which_mode_admin_is_in() {
    let dir = tempfile::tempdir().unwrap();
    let own = "[[credentials]]\ndialect = \"huawei\"\nid = \"HWops\"\nsecret = \"own-secret\"\naccount = \"ops\"\n";
    for (config, env_token, expected) in [
        ("listen = \"127.0.0.1:9090\"\n".to_string(), None, "# admin: open without a token: 127.0.0.1:9090 is loopback"),
        (format!("listen = \"0.0.0.0:9090\"\n{own}"), None, "# admin: locked: 0.0.0.0:9090 is reachable"),
        (format!("listen = \"0.0.0.0:9090\"\n{own}"), Some("token-from-the-environment"), "# admin: on 0.0.0.0:9090, token required"),
        (
            format!("listen = \"0.0.0.0:9090\"\n[admin]\ntoken = \"token-in-the-file-0\"\nlisten = \"127.0.0.1:9191\"\n{own}"),
            None,
            "# admin: on 127.0.0.1:9191, token required",
        ),
        ("[admin]\nenabled = false\n".to_string(), None, "# admin: disabled"),
    ] {
        let path = dir.path().join("k.toml");
        std::fs::write(&path, &config).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvmux"));
        cmd.arg("check-config").arg(&path).env_remove("KVMUX_ADMIN_TOKEN");
        if let Some(token) = env_token {
            cmd.env("KVMUX_ADMIN_TOKEN", token);
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{config}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(expected), "{config}: {text}");
        assert!(!text.contains("token-in-the-file-0") && !text.contains("token-from-the-env"));
    }
}
