//! Transports that carry MCP to the tool layer.

pub mod stdio;
