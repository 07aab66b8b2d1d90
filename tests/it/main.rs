//! End-to-end tests over real HTTP against an in-process server, each run on SQLite and on
//! PostgreSQL.

mod accounts;
mod agent;
mod audit;
mod auth;
mod aws;
mod bad_input;
mod cli;
mod inventory;
mod jobs;
mod optimize;
mod risk;
mod support;
mod templates;
mod tenancy;
