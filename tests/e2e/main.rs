//! End-to-end tests: the real server binary, real shells in real PTYs, and rmcp's MCP
//! client over stdio and HTTP. One test binary with a shared harness.

mod harness;

mod audit;
mod completion;
mod connections;
mod containment;
mod core;
mod hostile;
mod http;
mod interactive;
mod output_flow;
mod process;
mod robustness;
mod server;
mod stdio_wire;
