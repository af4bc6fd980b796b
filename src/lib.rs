//! carbonhound: one binary doing the job of carbon-cache, graphite-web and Hound.
//!
//! (Module tour below is completed as the modules land.)

pub mod alert;
pub mod api;
pub mod carbon;
pub mod config;
pub mod graph;
pub mod query;
pub mod ratelimit;
pub mod server;
pub mod store;
pub mod whisper;
