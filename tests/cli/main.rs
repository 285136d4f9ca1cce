//! One test binary: every test runs the real xone against its own home.

#[path = "../fake_gitlab/mod.rs"]
mod fake_gitlab;
#[path = "../fake_http/mod.rs"]
mod fake_http;
#[path = "../fake_jira/mod.rs"]
mod fake_jira;
#[path = "../fake_kube/mod.rs"]
mod fake_kube;
mod harness;

mod bluegreen;
mod branch;
mod build;
mod config;
mod deploy;
mod env;
mod fake_kube_check;
mod gitlab;
mod gitlab_faults;
mod gray;
mod integrate;
mod jira;
mod lifecycle;
mod notify;
mod output;
mod pipeline;
mod project;
mod release;
mod requirement;
mod review;
mod setup;
mod shell;
mod store;
mod watch;
