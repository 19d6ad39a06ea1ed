//! relaydoctor: finds why mail servers refuse to relay, or relay for everyone.

pub mod app;
pub mod args;
pub mod baseline;
pub mod catalogue;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod discover;
pub mod dnsbl;
pub mod exim;
pub mod explain;
pub mod finding;
pub mod fix;
pub mod host;
pub mod lint;
pub mod outcome;
pub mod plesk;
pub mod postfix;
pub mod progress;
pub mod qmail;
pub mod relay;
pub mod report;
pub mod secrets;
pub mod source;
pub mod suppress;
