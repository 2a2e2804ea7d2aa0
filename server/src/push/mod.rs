//! Push: users' push rules (`ruleset`) and notifications to push gateways (`gateway`).

pub mod gateway;
pub mod ruleset;
