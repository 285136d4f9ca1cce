//! The work the commands ask for, over the domain (the rules), the store (the local journal)
//! and the adapters (the systems xone talks to). No clap and no printing of data: a command
//! parses, lends an operation what it needs (`Scope`), and reports what comes back. Progress
//! and warnings reach a person through the `Ui` handle in the scope.

pub mod analysis;
pub mod bluegreen;
pub mod branches;
pub mod build;
pub mod docs;
pub mod doctor;
pub mod events;
pub mod fan_out;
pub mod gray;
pub mod gray_state;
pub mod lifecycle;
pub mod migrate;
pub mod notify;
pub mod pipeline;
pub mod project;
pub mod release;
pub mod requirement;
pub mod review;
pub mod revisions;
pub mod rollback;
pub mod sync;
pub mod target;
pub mod watch;

use crate::adapters::tracker::Tracker;
use crate::adapters::{http, Forges};
use crate::config::Config;
use crate::ui::Ui;

/// What a command lends an operation: the settings, how remote systems are reached, and the
/// handle through which progress and warnings reach a person.
pub struct Scope<'a> {
    pub config: &'a Config,
    pub remote: http::Settings,
    pub ui: &'a Ui,
}

/// Who acts, or why that cannot be told (an invalid `XONE_USER`): asked for only where an
/// operation records something, so that what it checks first still comes first.
pub type Actor = crate::ui::Result<String>;

/// Who acts, and the systems an operation on requirements and their branches reaches.
pub struct Work<'a> {
    pub ui: &'a Ui,
    pub forges: &'a Forges,
    pub tracker: &'a dyn Tracker,
    pub actor: &'a str,
}
