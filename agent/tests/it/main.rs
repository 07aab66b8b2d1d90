//! Integration tests: a real agent (kube-rs client, reqwest) against the in-process fake
//! Kubernetes API server and the fake control plane, over HTTP on 127.0.0.1.

mod agent;
mod manifests;
