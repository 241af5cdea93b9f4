#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kubeboot_fuzzing::csr(data));
