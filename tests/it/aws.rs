//! Account linking over HTTP with the real AWS adapter pointed at moto (an AWS API
//! emulator). Needs `moto_server` (`pip install 'moto[server]'`); fails loudly without it.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use spot_actors::connect::AwsConnector;
use spot_cloud::aws::{AwsCredentials, Secret};

use crate::both;
use crate::support::{Backend, TestApp};

pub(crate) struct Moto {
    child: Child,
    pub(crate) url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("moto_server not found ({e}): pip install 'moto[server]'"));
    let url = format!("http://127.0.0.1:{port}");
    let m = Moto { child, url };
    for _ in 0..100 {
        if reqwest::get(format!("{}/moto-api/", m.url)).await.is_ok() {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto_server did not start on {}", m.url);
}

pub(crate) fn connector(m: &Moto) -> Arc<AwsConnector> {
    Arc::new(AwsConnector {
        endpoint_url: Some(m.url.clone()),
        base: AwsCredentials::AccessKeys {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        },
    })
}

async fn role_verification_against_moto_links_and_scans(b: Backend) {
    let m = moto().await;
    let app = TestApp::start_with_connector(b, connector(&m)).await;
    let s = app.signup("Moto Org").await;
    let link = app
        .json(
            Method::POST,
            "/api/accounts/link",
            Some(&s.access),
            Some(json!({})),
        )
        .await
        .1;
    assert_eq!(link["provider"], "aws");
    // moto's account is 123456789012; AssumeRole with the external id succeeds there.
    let body = json!({"aws_account_id": "123456789012", "role_arn": "arn:aws:iam::123456789012:role/SpotOptimizer", "region": "us-east-1", "name": "Moto"});
    let (st, acc) = app
        .json(
            Method::POST,
            "/api/accounts/verify",
            Some(&s.access),
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{acc}");
    assert_eq!(acc["provider"], "aws");
    let id = acc["id"].as_str().expect("id").to_string();
    let mut last = serde_json::Value::Null;
    for _ in 0..150 {
        last = app
            .json(
                Method::GET,
                &format!("/api/accounts/{id}/scan"),
                Some(&s.access),
                None,
            )
            .await
            .1;
        if last["status"] != "scanning" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["status"], "active", "{last}");
}
both!(role_verification_against_moto_links_and_scans);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_keys_are_validated_against_moto() {
    let m = moto().await;
    let app = TestApp::start_with_connector(Backend::Sqlite, connector(&m)).await;
    let s = app.signup("Keys Org").await;
    let body = json!({"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "region": "us-east-1", "name": "Lab"});
    let (st, acc) = app
        .json(
            Method::POST,
            "/api/accounts/keys",
            Some(&s.access),
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{acc}");
    assert_eq!(acc["aws_account_id_masked"], "1234-****-****");
    assert_eq!(acc["method"], "keys");
}
