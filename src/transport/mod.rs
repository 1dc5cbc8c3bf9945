//! Transports that carry MCP to the tool layer: stdio for one client that starts the
//! server, streamable HTTP for many.

pub mod http;
pub mod stdio;
pub mod write_stall;
