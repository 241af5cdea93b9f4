#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| kubeboot_fuzzing::body_yaml(data));
