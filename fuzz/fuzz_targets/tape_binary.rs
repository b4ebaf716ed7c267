#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shadowcat_tape::fuzzing::binary_read(data));
