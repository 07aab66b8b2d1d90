//! The plain manifests (`deploy/agent`, rendered with `kubectl kustomize`) deserialise into
//! k8s-openapi types, run the agent non-root with a read-only root filesystem and no
//! capabilities, and grant exactly the RBAC the agent needs; the Helm chart matches them.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Deserialize;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// (apiGroup, resource, verb) triples the agent needs — nothing more.
fn allowed() -> BTreeSet<(String, String, String)> {
    let mut s = BTreeSet::new();
    let mut add = |g: &str, rs: &[&str], vs: &[&str]| {
        for r in rs {
            for v in vs {
                s.insert((g.to_string(), r.to_string(), v.to_string()));
            }
        }
    };
    add("", &["nodes"], &["get", "list", "watch", "patch", "delete"]);
    add("", &["pods", "events"], &["get", "list", "watch"]);
    add("", &["pods/eviction"], &["create"]);
    add(
        "policy",
        &["poddisruptionbudgets"],
        &["get", "list", "watch"],
    );
    add("metrics.k8s.io", &["nodes", "pods"], &["get", "list"]);
    add("apps", &["replicasets"], &["get"]);
    add("apps", &["deployments", "statefulsets"], &["get", "patch"]);
    s
}

fn render() -> Vec<serde_json::Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(deploy_dir().join("agent"))
        .output()
        .unwrap_or_else(|e| {
            panic!("kubectl is required to render deploy/agent (kubectl kustomize): {e}")
        });
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/agent failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde_json::Value::deserialize(doc).expect("a YAML document"))
        .collect()
}

#[test]
fn rendered_manifests_are_valid_least_privilege_and_non_root() {
    let docs = render();
    let kinds: BTreeSet<String> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    let want: BTreeSet<String> = [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Secret",
        "ConfigMap",
        "Deployment",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(kinds, want);
    assert_eq!(docs.len(), want.len());
    let mut role = None;
    let mut deployment = None;
    for d in docs {
        let kind = d["kind"].as_str().unwrap_or_default().to_string();
        match kind.as_str() {
            "Namespace" => {
                serde_json::from_value::<Namespace>(d).expect("Namespace");
            }
            "ServiceAccount" => {
                let sa = serde_json::from_value::<ServiceAccount>(d).expect("ServiceAccount");
                assert_eq!(sa.metadata.name.as_deref(), Some("spot-agent"));
            }
            "Secret" => {
                let s = serde_json::from_value::<Secret>(d).expect("Secret");
                assert!(s.string_data.unwrap_or_default().contains_key("token"));
            }
            "ConfigMap" => {
                let c = serde_json::from_value::<ConfigMap>(d).expect("ConfigMap");
                assert!(c
                    .data
                    .unwrap_or_default()
                    .contains_key("SPOT_CONTROL_PLANE_URL"));
            }
            "ClusterRole" => {
                role = Some(serde_json::from_value::<ClusterRole>(d).expect("ClusterRole"))
            }
            "ClusterRoleBinding" => {
                let b =
                    serde_json::from_value::<ClusterRoleBinding>(d).expect("ClusterRoleBinding");
                assert_eq!(b.role_ref.name, "spot-agent");
                let subjects = b.subjects.unwrap_or_default();
                assert_eq!(subjects.len(), 1);
                assert_eq!(subjects[0].kind, "ServiceAccount");
                assert_eq!(subjects[0].name, "spot-agent");
                assert_eq!(subjects[0].namespace.as_deref(), Some("spot-agent"));
            }
            "Deployment" => {
                deployment = Some(serde_json::from_value::<Deployment>(d).expect("Deployment"))
            }
            other => panic!("unexpected object {other}"),
        }
    }

    // RBAC: exactly the allowed triples, no wildcards, no secrets.
    let role = role.expect("a ClusterRole");
    let mut granted = BTreeSet::new();
    for r in role.rules.unwrap_or_default() {
        assert!(r.non_resource_urls.is_none() && r.resource_names.is_none());
        for g in r.api_groups.clone().unwrap_or_default() {
            for res in r.resources.clone().unwrap_or_default() {
                for v in &r.verbs {
                    assert_ne!(v, "*");
                    assert_ne!(res, "*");
                    assert_ne!(res, "secrets");
                    granted.insert((g.clone(), res.clone(), v.clone()));
                }
            }
        }
    }
    assert_eq!(
        granted,
        allowed(),
        "the ClusterRole grants more or less than the agent needs"
    );

    // Deployment: one replica, non-root, read-only root fs, no capabilities, no ports.
    let d = deployment.expect("a Deployment");
    let spec = d.spec.expect("spec");
    assert_eq!(spec.replicas, Some(1));
    let pod = spec.template.spec.expect("pod spec");
    assert_eq!(pod.service_account_name.as_deref(), Some("spot-agent"));
    let psc = pod.security_context.expect("pod securityContext");
    assert_eq!(psc.run_as_non_root, Some(true));
    assert!(psc.run_as_user.is_some_and(|u| u != 0));
    assert_eq!(pod.containers.len(), 1);
    let c = &pod.containers[0];
    assert!(c.ports.is_none(), "the agent never listens on a port");
    let sc = c
        .security_context
        .clone()
        .expect("container securityContext");
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(
        sc.capabilities.and_then(|c| c.drop),
        Some(vec!["ALL".to_string()])
    );
    let res = c.resources.clone().expect("resources");
    for key in ["cpu", "memory"] {
        assert!(
            res.requests.as_ref().is_some_and(|r| r.contains_key(key)),
            "request {key}"
        );
        assert!(
            res.limits.as_ref().is_some_and(|r| r.contains_key(key)),
            "limit {key}"
        );
    }
    let env = c.env.clone().unwrap_or_default();
    let names: BTreeSet<&str> = env.iter().map(|e| e.name.as_str()).collect();
    for n in [
        "SPOT_CONTROL_PLANE_URL",
        "SPOT_CLUSTER_ID",
        "SPOT_AGENT_TOKEN",
    ] {
        assert!(names.contains(n), "env {n}");
    }
    let token = env.iter().find(|e| e.name == "SPOT_AGENT_TOKEN").unwrap();
    let key_ref = token
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .expect("token from the secret");
    assert_eq!(key_ref.name, "spot-agent-token");
    assert_eq!(key_ref.key, "token");
}

#[test]
fn helm_chart_matches_the_plain_manifests() {
    let dir = deploy_dir();
    let read =
        |p: &str| std::fs::read_to_string(dir.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let rules = |text: &str| -> String {
        let start = text
            .find("\nrules:")
            .unwrap_or_else(|| panic!("no rules in {text}"));
        text[start..].to_string()
    };
    assert_eq!(
        rules(&read("helm/spot-agent/templates/clusterrole.yaml")),
        rules(&read("agent/clusterrole.yaml")),
        "the chart's ClusterRole rules differ from deploy/agent/clusterrole.yaml"
    );
    // The rules part of the chart template is plain YAML: it must give the same grants.
    let chart_role: serde_json::Value =
        serde_yaml_ng::from_str(&rules(&read("helm/spot-agent/templates/clusterrole.yaml")))
            .unwrap();
    assert!(chart_role["rules"].as_array().is_some_and(|r| r.len() == 8));
    let security = |text: &str| -> Vec<String> {
        text.lines()
            .skip_while(|l| !l.contains("          securityContext:"))
            .take(9)
            .map(|l| l.trim().to_string())
            .collect()
    };
    let chart_dep = read("helm/spot-agent/templates/deployment.yaml");
    let plain_dep = read("agent/deployment.yaml");
    assert_eq!(security(&chart_dep), security(&plain_dep));
    assert!(security(&chart_dep)
        .iter()
        .any(|l| l == "readOnlyRootFilesystem: true"));
    assert!(chart_dep.contains("runAsNonRoot: true") && chart_dep.contains("replicas: 1"));
    for env in [
        "SPOT_CONTROL_PLANE_URL",
        "SPOT_CLUSTER_ID",
        "SPOT_AGENT_TOKEN",
    ] {
        assert!(chart_dep.contains(env), "chart env {env}");
    }
    let values: serde_json::Value =
        serde_yaml_ng::from_str(&read("helm/spot-agent/values.yaml")).unwrap();
    assert!(values["resources"]["requests"]["cpu"].is_string());
    assert!(values["resources"]["limits"]["memory"].is_string());
    let chart: serde_json::Value =
        serde_yaml_ng::from_str(&read("helm/spot-agent/Chart.yaml")).unwrap();
    assert_eq!(chart["name"], "spot-agent");
    assert_eq!(chart["apiVersion"], "v2");
}
