//! The HTTP handlers, one module per area.

pub mod market;
pub mod orders;
pub mod system;
