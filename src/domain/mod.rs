//! The rules of xone: keys, states, gates, dates and templates. Pure: no I/O, unit-tested.

pub mod date;
pub mod lifecycle;
pub mod names;
pub mod notice;
pub mod remarks;
pub mod template;

pub use lifecycle::{Facts, Status};
pub use names::{DocKind, ProjectKey, RequirementKey, ReviewKind, Role, Verdict};
pub mod gray;
pub mod ignore;
pub mod judge;
pub mod manifest;
pub mod reports;
pub mod rollout;
