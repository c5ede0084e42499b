#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| paygate_fuzz::page_token::run(data));
