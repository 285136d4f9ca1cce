//! One test binary: every test runs the real xone against its own home.

mod harness;

mod branch;
mod config;
mod integrate;
mod lifecycle;
mod output;
mod project;
mod requirement;
mod review;
mod shell;
mod store;
