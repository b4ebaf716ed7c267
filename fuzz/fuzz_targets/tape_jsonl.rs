#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shadowcat_tape::fuzzing::jsonl_read(data));
