//! Security groups read from a linked account for the node template wizard: listed from
//! the simulator's account (the cluster groups EKS creates, tagged with their cluster),
//! 409 without a linked account, 404 for another organization's account, and a listed
//! id accepted by template validation.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both;
use crate::inventory::link_sim;
use crate::support::{assert_error, Backend, TestApp};

async fn security_groups_come_from_the_linked_account(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Groups Org").await;
    let (st, e) = app
        .json(
            Method::GET,
            "/api/templates/security-groups",
            Some(&s.access),
            None,
        )
        .await;
    assert_error(st, &e, StatusCode::CONFLICT);

    let account = link_sim(&app, &s, "123456789012", "Dev").await;
    let (st, v) = app
        .json(
            Method::GET,
            &format!("/api/templates/security-groups?account_id={account}"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["account_id"], account.as_str());
    assert_eq!(v["region"], "us-east-1");
    let items = v["items"].as_array().expect("items");
    let (_, clusters) = app
        .json(Method::GET, "/api/clusters", Some(&s.access), None)
        .await;
    let cluster = clusters["items"][0]["name"].as_str().expect("cluster");
    let nodes = items
        .iter()
        .find(|g| g["name"] == format!("{cluster}-nodes"))
        .unwrap_or_else(|| panic!("no node group for {cluster}: {v}"));
    assert_eq!(nodes["cluster"], cluster);
    assert!(items.iter().any(|g| g["name"] == "default"));
    // Without account_id: the first linked account.
    let (_, first) = app
        .json(
            Method::GET,
            "/api/templates/security-groups",
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(first["items"], v["items"]);

    // A listed id is a valid template security group.
    let sg = nodes["id"].as_str().expect("id");
    let (st, t) = app
        .json(
            Method::POST,
            "/api/templates",
            Some(&s.access),
            Some(json!({"name": "With groups", "spec": {"families": ["m5"], "security_groups": [sg]}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    assert_eq!(t["spec"]["security_groups"], json!([sg]));

    // Another organization cannot read this account.
    let other = app.signup("Other Org").await;
    let (st, e) = app
        .json(
            Method::GET,
            &format!("/api/templates/security-groups?account_id={account}"),
            Some(&other.access),
            None,
        )
        .await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
}
both!(security_groups_come_from_the_linked_account);
