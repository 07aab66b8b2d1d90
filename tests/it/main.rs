//! End-to-end tests over real HTTP against an in-process server, each run on SQLite and on
//! PostgreSQL.

mod accounts;
mod admin_clients;
mod agent;
mod audit;
mod auth;
mod aws;
mod bad_input;
mod cli;
mod force;
mod hibernation;
mod identity;
mod inventory;
mod jobs;
mod optimize;
mod risk;
mod support;
mod templates;
mod tenancy;
mod waste;
