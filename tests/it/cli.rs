//! The binary's configuration errors: one line naming the setting, never a backtrace.

use std::process::Command;

fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("spot-cli-{}", uuid::Uuid::new_v4().simple()));
    let mut c = Command::new(env!("CARGO_BIN_EXE_spot-optimizer"));
    c.args(args)
        .arg("--data-dir")
        .arg(&dir)
        .env_remove("DATABASE_URL")
        .env_remove("SPOT_SECRET_KEY")
        .env_remove("SPOT_JWT_SECRET");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

#[test]
fn invalid_settings_exit_with_one_line_naming_the_setting() {
    let cases: Vec<(Vec<&str>, Vec<(&str, &str)>, &str)> = vec![
        (
            vec!["serve"],
            vec![("DATABASE_URL", "mysql://nope")],
            "DATABASE_URL",
        ),
        (
            vec!["serve", "--listen", "not-an-address"],
            vec![],
            "not-an-address",
        ),
        (
            vec!["serve"],
            vec![
                ("SPOT_SECRET_KEY", "tooshort"),
                (
                    "SPOT_JWT_SECRET",
                    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                ),
            ],
            "SPOT_SECRET_KEY",
        ),
        (
            vec!["serve"],
            vec![("DATABASE_URL", "postgres://127.0.0.1:5432/test")],
            "SPOT_JWT_SECRET",
        ),
        (
            vec!["serve"],
            vec![("SPOT_ADMIN_EMAIL", "root@example.com")],
            "SPOT_ADMIN_PASSWORD",
        ),
        (
            vec!["serve", "--login-per-minute", "many"],
            vec![],
            "login-per-minute",
        ),
        (vec!["serve"], vec![("REDIS_URL", "http://x")], "REDIS_URL"),
        // Customers trust a platform role, never an account root.
        (
            vec![
                "serve",
                "--platform-role-arn",
                "arn:aws:iam::123456789012:root",
            ],
            vec![],
            "SPOT_PLATFORM_ROLE_ARN",
        ),
        (
            vec!["serve", "--cloud", "aws"],
            vec![],
            "SPOT_PLATFORM_ROLE_ARN",
        ),
    ];
    for (args, env, needle) in cases {
        let (code, err) = run(&args, &env);
        assert_ne!(code, 0, "{args:?} {env:?} should fail");
        assert_eq!(err.lines().count(), 1, "one line expected, got: {err}");
        assert!(err.contains(needle), "{err} should name {needle}");
        assert!(!err.contains("panicked") && !err.contains("backtrace"));
    }
}

#[test]
fn openapi_subcommand_prints_the_document() {
    let out = Command::new(env!("CARGO_BIN_EXE_spot-optimizer"))
        .arg("openapi")
        .output()
        .expect("run");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["paths"]["/api/auth/signup"].is_object());
    assert!(v["paths"]["/api/accounts/verify"].is_object());
}

/// `plan --workload`: the what-if entry point prints the engine's report plus `solve_ms`;
/// without the timing it equals the engine's golden file. Bad input: one line naming the
/// field, exit 2.
#[test]
fn plan_workload_matches_the_engine_golden_file() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_spot-optimizer"))
        .args(["plan", "--workload"])
        .arg(root.join("engine/whatif/example.json"))
        .output()
        .expect("run binary");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
    let solve_ms = got
        .as_object_mut()
        .and_then(|o| o.remove("solve_ms"))
        .and_then(|v| v.as_f64())
        .expect("solve_ms");
    assert!(solve_ms >= 0.0);
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("engine/whatif/example.golden.json")).expect("golden"),
    )
    .expect("golden json");
    assert_eq!(got, golden);

    let bad = std::env::temp_dir().join(format!("workload-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(
        &bad,
        r#"{"version":1,"instance_types":[{"name":"m5.large","vcpu":-2}]}"#,
    )
    .expect("write");
    let (code, err) = run(
        &["plan", "--workload", bad.to_str().unwrap_or_default()],
        &[],
    );
    let _ = std::fs::remove_file(&bad);
    assert_eq!(code, 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("instance_types[0].vcpu"), "{err}");
}
