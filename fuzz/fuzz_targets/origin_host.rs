//! `Host` and `Origin` values against an allowlist. The input format and the properties
//! are documented in `mcp_terminal_server::fuzzing`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mcp_terminal_server::fuzzing::check_origin_host(data));
