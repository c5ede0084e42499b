#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| paygate_fuzz::journal::run(data));
