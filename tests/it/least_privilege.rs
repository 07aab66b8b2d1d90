//! Least privilege in customer accounts: the CloudFormation role, evaluated. A small IAM
//! evaluator (Allow/Deny statements, resource wildcards, the condition operators the
//! template uses) resolves the template's intrinsics for given parameter values and answers
//! "may the platform do X to Y", so the tag scoping of terminate / Auto Scaling actions,
//! PassRole's scope and the trusted principal are checked as behaviour, not as text. The
//! quick-create link carries the configured platform role.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use serde_yaml_ng::Value as Y;

use crate::support::{test_config, Backend, TestApp};

const TEMPLATE: &str = include_str!("../../deploy/cloudformation/spot-optimizer-role.yaml");
const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";

struct Stack {
    t: Y,
    params: BTreeMap<String, Value>,
}

impl Stack {
    /// The template deployed with `overrides` on top of its defaults (and actions on).
    fn new(overrides: &[(&str, Value)]) -> Stack {
        let t: Y = serde_yaml_ng::from_str(TEMPLATE).expect("template is YAML");
        let mut params = BTreeMap::new();
        for (k, p) in t["Parameters"].as_mapping().expect("Parameters") {
            let k = k.as_str().expect("name").to_string();
            let default = match (&p["Type"], &p["Default"]) {
                (ty, Y::String(d)) if ty.as_str() == Some("CommaDelimitedList") => {
                    json!(d.split(',').map(str::trim).collect::<Vec<_>>())
                }
                (_, Y::String(d)) => json!(d),
                _ => Value::Null,
            };
            params.insert(k, default);
        }
        params.insert("ExternalId".into(), json!("0123456789abcdef0123"));
        params.insert(
            "PlatformRoleArn".into(),
            json!("arn:aws:iam::999988887777:role/SpotOptimizerPlatform"),
        );
        params.insert("EnableActions".into(), json!("true"));
        for (k, v) in overrides {
            assert!(params.contains_key(*k), "no parameter {k}");
            params.insert(k.to_string(), v.clone());
        }
        Stack { t, params }
    }

    fn reference(&self, name: &str) -> Value {
        match name {
            "AWS::Region" => json!(REGION),
            "AWS::AccountId" => json!(ACCOUNT),
            "AWS::Partition" => json!("aws"),
            p => self
                .params
                .get(p)
                .cloned()
                .unwrap_or_else(|| json!(format!("<{p}>"))),
        }
    }

    fn sub(&self, s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let end = rest[i..].find('}').expect("closing brace") + i;
            let v = self.reference(&rest[i + 2..end]);
            out.push_str(v.as_str().expect("scalar in !Sub"));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn condition(&self, name: &str) -> bool {
        let c = &self.t["Conditions"][name];
        assert!(!c.is_null(), "no condition {name}");
        self.truth(c)
    }

    fn truth(&self, v: &Y) -> bool {
        let Y::Tagged(t) = v else {
            panic!("condition expected: {v:?}")
        };
        let args = t.value.as_sequence();
        match t.tag.to_string().trim_start_matches('!') {
            "Equals" => {
                let a = args.expect("Equals args");
                self.resolve(&a[0]) == self.resolve(&a[1])
            }
            "And" => args.expect("And").iter().all(|x| self.truth(x)),
            "Or" => args.expect("Or").iter().any(|x| self.truth(x)),
            "Not" => !self.truth(&args.expect("Not")[0]),
            "Condition" => self.condition(t.value.as_str().expect("name")),
            other => panic!("unsupported condition function {other}"),
        }
    }

    /// The value with every intrinsic function applied.
    fn resolve(&self, v: &Y) -> Value {
        match v {
            Y::Tagged(t) => {
                let tag = t.tag.to_string();
                match tag.trim_start_matches('!') {
                    "Ref" => self.reference(t.value.as_str().expect("Ref name")),
                    "Sub" => json!(self.sub(t.value.as_str().expect("Sub string"))),
                    "GetAtt" => json!(format!("getatt:{}", t.value.as_str().unwrap_or(""))),
                    "Join" => {
                        let a = t.value.as_sequence().expect("Join args");
                        let sep = a[0].as_str().expect("separator");
                        let parts = self.resolve(&a[1]);
                        let parts: Vec<String> = parts
                            .as_array()
                            .expect("list")
                            .iter()
                            .map(|p| p.as_str().expect("string").to_string())
                            .collect();
                        json!(parts.join(sep))
                    }
                    "If" => {
                        let a = t.value.as_sequence().expect("If args");
                        if self.condition(a[0].as_str().expect("condition name")) {
                            self.resolve(&a[1])
                        } else {
                            self.resolve(&a[2])
                        }
                    }
                    other => panic!("unsupported intrinsic {other}"),
                }
            }
            Y::Mapping(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.as_str().expect("key").to_string(), self.resolve(v)))
                    .collect(),
            ),
            Y::Sequence(s) => Value::Array(s.iter().map(|x| self.resolve(x)).collect()),
            Y::String(s) => json!(s),
            Y::Bool(b) => json!(b),
            Y::Number(n) => json!(n.to_string()),
            Y::Null => Value::Null,
        }
    }

    /// Every statement attached to the SpotOptimizer role in this deployment.
    fn statements(&self) -> Vec<Value> {
        let resources = self.t["Resources"].as_mapping().expect("Resources");
        let mut out = Vec::new();
        for (_, r) in resources {
            if let Some(c) = r["Condition"].as_str() {
                if !self.condition(c) {
                    continue;
                }
            }
            let docs: Vec<Value> = match r["Type"].as_str() {
                Some("AWS::IAM::Role") => self
                    .resolve(&r["Properties"]["Policies"])
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| p["PolicyDocument"].clone())
                    .collect(),
                Some("AWS::IAM::Policy") => {
                    vec![self.resolve(&r["Properties"]["PolicyDocument"])]
                }
                _ => continue,
            };
            for d in docs {
                out.extend(d["Statement"].as_array().cloned().unwrap_or_default());
            }
        }
        out
    }

    /// IAM's answer for one request: an Allow matches and no Deny does.
    fn allowed(&self, action: &str, resource: &str, ctx: &[(&str, &str)]) -> bool {
        let ctx: BTreeMap<&str, &str> = ctx.iter().copied().collect();
        let matching = |effect: &str| {
            self.statements().into_iter().any(|s| {
                s["Effect"] == effect
                    && list(&s["Action"]).iter().any(|a| wildcard(a, action))
                    && list(&s["Resource"]).iter().any(|r| wildcard(r, resource))
                    && conditions_hold(&s["Condition"], &ctx)
            })
        };
        matching("Allow") && !matching("Deny")
    }
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// IAM wildcard match (`*` any run, `?` one character).
fn wildcard(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let mut dp = vec![vec![false; s.len() + 1]; p.len() + 1];
    dp[0][0] = true;
    for i in 1..=p.len() {
        dp[i][0] = dp[i - 1][0] && p[i - 1] == '*';
        for j in 1..=s.len() {
            dp[i][j] = match p[i - 1] {
                '*' => dp[i - 1][j] || dp[i][j - 1],
                '?' => dp[i - 1][j - 1],
                c => dp[i - 1][j - 1] && c == s[j - 1],
            };
        }
    }
    dp[p.len()][s.len()]
}

fn conditions_hold(cond: &Value, ctx: &BTreeMap<&str, &str>) -> bool {
    let Some(ops) = cond.as_object() else {
        return cond.is_null();
    };
    ops.iter().all(|(op, keys)| {
        keys.as_object()
            .expect("condition keys")
            .iter()
            .all(|(k, want)| {
                let want = list(want);
                let have = ctx.get(k.as_str()).copied();
                match op.as_str() {
                    "StringEquals" => have.is_some_and(|h| want.iter().any(|w| w == h)),
                    "StringLike" => have.is_some_and(|h| want.iter().any(|w| wildcard(w, h))),
                    "StringEqualsIgnoreCase" => {
                        have.is_some_and(|h| want.iter().any(|w| w.eq_ignore_ascii_case(h)))
                    }
                    "StringNotEqualsIgnoreCase" => {
                        have.is_none_or(|h| !want.iter().any(|w| w.eq_ignore_ascii_case(h)))
                    }
                    "Null" => (want == ["true"]) == have.is_none(),
                    other => panic!("the evaluator does not know {other}"),
                }
            })
    })
}

fn instance() -> String {
    format!("arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0")
}

fn group() -> String {
    format!(
        "arn:aws:autoscaling:{REGION}:{ACCOUNT}:autoScalingGroup:uuid:autoScalingGroupName/ng-1"
    )
}

fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

#[test]
fn the_evaluator_itself_allows_denies_and_matches_wildcards() {
    assert!(wildcard(
        "arn:*:role/*Node*",
        "arn:aws:role/eksctl-NodeInstanceRole-1"
    ));
    assert!(!wildcard("arn:*:role/*Node*", "arn:aws:role/Admin"));
    assert!(wildcard("a?c", "abc") && !wildcard("a?c", "ac"));
    // Inventory reads are allowed on anything, actions off by default.
    let read_only = Stack::new(&[("EnableActions", json!("false"))]);
    assert!(read_only.allowed("ec2:DescribeInstances", "*", &[]));
    assert!(!read_only.allowed(
        "ec2:TerminateInstances",
        &instance(),
        &[("aws:ResourceTag/eks:cluster-name", "prod")]
    ));
}

#[test]
fn terminate_and_scaling_are_scoped_to_cluster_nodes_and_managed_instances() {
    let s = Stack::new(&[]);
    let term = |tags: &[(&str, &str)]| s.allowed("ec2:TerminateInstances", &instance(), tags);
    assert!(term(&[("aws:ResourceTag/eks:cluster-name", "prod")]));
    assert!(term(&[("aws:ResourceTag/karpenter.sh/discovery", "prod")]));
    assert!(term(&[("aws:ResourceTag/spot-optimizer:managed", "true")]));
    // An instance of no cluster, or one merely claiming "managed=false": refused.
    assert!(!term(&[]));
    assert!(!term(&[("aws:ResourceTag/Name", "bastion")]));
    assert!(!term(&[(
        "aws:ResourceTag/spot-optimizer:managed",
        "false"
    )]));
    // Protected instances never, whatever else they carry (any value but false/no/0).
    for v in ["true", "yes", "finance"] {
        assert!(!term(&[
            ("aws:ResourceTag/eks:cluster-name", "prod"),
            ("aws:ResourceTag/spot-optimizer.io/protect", v),
        ]));
    }
    assert!(term(&[
        ("aws:ResourceTag/eks:cluster-name", "prod"),
        ("aws:ResourceTag/spot-optimizer.io/protect", "no"),
    ]));
    // Another account's or region's instance: not covered by the resource pattern.
    assert!(!s.allowed(
        "ec2:TerminateInstances",
        "arn:aws:ec2:eu-west-1:111122223333:instance/i-1",
        &[("aws:ResourceTag/eks:cluster-name", "prod")]
    ));
    // Auto Scaling changes: node groups of clusters only.
    for a in [
        "autoscaling:UpdateAutoScalingGroup",
        "autoscaling:SetDesiredCapacity",
        "autoscaling:DetachInstances",
    ] {
        assert!(s.allowed(a, &group(), &[("aws:ResourceTag/eks:cluster-name", "prod")]));
        assert!(!s.allowed(a, &group(), &[("aws:ResourceTag/team", "web")]));
    }
    // The Lab's volume move: on cluster nodes and managed instances only.
    for a in ["ec2:DetachVolume", "ec2:AttachVolume"] {
        assert!(s.allowed(
            a,
            &instance(),
            &[("aws:ResourceTag/eks:cluster-name", "prod")]
        ));
        assert!(s.allowed(
            a,
            &instance(),
            &[("aws:ResourceTag/spot-optimizer:managed", "true")]
        ));
        assert!(!s.allowed(a, &instance(), &[("aws:ResourceTag/Name", "bastion")]));
    }
    // Launches must tag the instance as managed; tags only at launch.
    assert!(s.allowed(
        "ec2:RunInstances",
        &instance(),
        &[("aws:RequestTag/spot-optimizer:managed", "true")]
    ));
    assert!(!s.allowed("ec2:RunInstances", &instance(), &[]));
    assert!(s.allowed(
        "ec2:CreateTags",
        &instance(),
        &[("ec2:CreateAction", "RunInstances")]
    ));
    assert!(!s.allowed("ec2:CreateTags", &instance(), &[]));
}

#[test]
fn cluster_names_narrow_the_scope_and_unregistered_cleanup_is_opt_in() {
    let s = Stack::new(&[("ClusterNames", json!(["prod", "staging"]))]);
    let term = |tags: &[(&str, &str)]| s.allowed("ec2:TerminateInstances", &instance(), tags);
    assert!(term(&[("aws:ResourceTag/eks:cluster-name", "prod")]));
    assert!(!term(&[("aws:ResourceTag/eks:cluster-name", "payments")]));
    assert!(!s.allowed(
        "autoscaling:SetDesiredCapacity",
        &group(),
        &[("aws:ResourceTag/eks:cluster-name", "payments")]
    ));
    assert!(!s.allowed(
        "ec2:RunInstances",
        &instance(),
        &[
            ("aws:RequestTag/spot-optimizer:managed", "true"),
            ("aws:RequestTag/eks:cluster-name", "payments")
        ]
    ));
    assert!(s.allowed(
        "ec2:RunInstances",
        &instance(),
        &[
            ("aws:RequestTag/spot-optimizer:managed", "true"),
            ("aws:RequestTag/eks:cluster-name", "staging")
        ]
    ));

    let cleanup = Stack::new(&[("AllowUnregisteredCleanup", json!("true"))]);
    assert!(cleanup.allowed("ec2:TerminateInstances", &instance(), &[]));
    assert!(!cleanup.allowed(
        "ec2:TerminateInstances",
        &instance(),
        &[("aws:ResourceTag/spot-optimizer.io/protect", "true")]
    ));
    // The opt-in alone, without actions, grants nothing.
    let off = Stack::new(&[
        ("AllowUnregisteredCleanup", json!("true")),
        ("EnableActions", json!("false")),
    ]);
    assert!(!off.allowed("ec2:TerminateInstances", &instance(), &[]));
}

#[test]
fn pass_role_only_for_node_roles_and_only_to_ec2() {
    let s = Stack::new(&[]);
    let pass =
        |r: &str, svc: &str| s.allowed("iam:PassRole", &role(r), &[("iam:PassedToService", svc)]);
    assert!(pass(
        "eksctl-prod-nodegroup-NodeInstanceRole-AB12",
        "ec2.amazonaws.com"
    ));
    assert!(pass("KarpenterNodeRole-prod", "ec2.amazonaws.com"));
    assert!(pass("prod-eks-node-group-role", "ec2.amazonaws.com"));
    assert!(!pass("OrganizationAccountAccessRole", "ec2.amazonaws.com"));
    assert!(!pass(
        "eksctl-prod-NodeInstanceRole",
        "lambda.amazonaws.com"
    ));
    assert!(!s.allowed(
        "iam:PassRole",
        &format!("arn:aws:iam::444455556666:role/NodeInstanceRole"),
        &[("iam:PassedToService", "ec2.amazonaws.com")]
    ));
    // A named pattern replaces the default.
    let named = Stack::new(&[("NodeRoleNamePattern", json!("prod-workers-*"))]);
    let ok = |r: &str| {
        named.allowed(
            "iam:PassRole",
            &role(r),
            &[("iam:PassedToService", "ec2.amazonaws.com")],
        )
    };
    assert!(ok("prod-workers-role"));
    assert!(!ok("KarpenterNodeRole-prod"));
}

#[test]
fn the_trusted_principal_is_the_configured_platform_role_never_a_root() {
    let s = Stack::new(&[]);
    let role = s.t["Resources"]
        .as_mapping()
        .expect("resources")
        .values()
        .find(|r| r["Type"].as_str() == Some("AWS::IAM::Role"))
        .expect("role")
        .clone();
    let trust = s.resolve(&role["Properties"]["AssumeRolePolicyDocument"]);
    let st = &trust["Statement"][0];
    assert_eq!(
        st["Principal"]["AWS"],
        "arn:aws:iam::999988887777:role/SpotOptimizerPlatform"
    );
    assert_eq!(
        st["Condition"]["StringEquals"]["sts:ExternalId"],
        "0123456789abcdef0123"
    );
    let pattern = s.t["Parameters"]["PlatformRoleArn"]["AllowedPattern"]
        .as_str()
        .expect("PlatformRoleArn has an AllowedPattern")
        .to_string();
    // A tiny check of the pattern's intent without a regex engine: the literal shape.
    assert!(
        pattern.contains(":role/") && pattern.starts_with("^arn:aws"),
        "{pattern}"
    );
    assert!(!pattern.contains(":root"));

    // cfn-lint, when installed, validates the template as CloudFormation.
    match std::process::Command::new("cfn-lint")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/cloudformation/spot-optimizer-role.yaml"
        ))
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "cfn-lint: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("cfn-lint not run ({e}); the evaluator checks above still ran"),
    }
}

/// The onboarding link hands customers the configured platform role for the trust policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_uses_the_configured_platform_role() {
    let mut cfg = test_config();
    cfg.platform_principal_arn = "arn:aws:iam::999988887777:role/SpotOptimizerPlatform".into();
    let app = TestApp::start_with(Backend::Sqlite, cfg).await;
    let s = app.signup("Trust").await;
    let (st, link) = app
        .json(
            Method::POST,
            "/api/accounts/link",
            Some(&s.access),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{link}");
    let url = link["quick_create_url"].as_str().expect("url");
    assert!(
        url.contains("param_PlatformRoleArn=arn%3Aaws%3Aiam%3A%3A999988887777%3Arole%2FSpotOptimizerPlatform"),
        "{url}"
    );
    let template = link["cloudformation_template"].as_str().expect("template");
    assert!(template.contains("AWS: !Ref PlatformRoleArn"));
}
