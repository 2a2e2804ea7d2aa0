//! Push: users' push rules and (see the submodules) what is done with their actions.

pub mod ruleset;
