//! The HTTP handlers, one module per area.

pub mod account;
pub mod admin;
pub mod market;
pub mod orders;
pub mod system;
