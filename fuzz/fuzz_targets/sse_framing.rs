#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shadowcat_mcp::fuzzing::sse_framing(data));
