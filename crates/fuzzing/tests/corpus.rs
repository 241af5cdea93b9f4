//! Every fuzz target over its committed corpus (`fuzz/corpus/<target>`) and 20,000 mutations
//! of it — the brief run CI makes. `scripts/fuzz` runs them for longer, under libFuzzer when
//! a nightly toolchain and `cargo fuzz` are installed. `FUZZ_TARGET`, `FUZZ_SECONDS` and
//! `FUZZ_SEED` make the ignored `fuzz_for_a_while` a long stable run of one target.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kubeboot_fuzzing::driver::{Budget, run};
use kubeboot_fuzzing::{TARGETS, target};

fn corpus_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(name)
}

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir(name))
        .unwrap_or_else(|e| panic!("fuzz/corpus/{name}: {e}"))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).expect("read"))
        .collect()
}

#[test]
fn every_target_survives_its_corpus_and_20000_mutations() {
    for (name, entry) in TARGETS {
        let seeds = corpus(name);
        assert!(
            seeds.len() >= 3,
            "fuzz/corpus/{name} holds at least 3 seeds"
        );
        let report = run(*entry, &seeds, 0x6b75_6265_626f_6f74, Budget::Runs(20_000))
            .unwrap_or_else(|c| panic!("{name} panicked on {:?}: {}", c.input, c.message));
        assert_eq!(report.runs, 20_000, "{name}");
    }
}

#[test]
#[ignore = "a long run: scripts/fuzz sets FUZZ_TARGET and FUZZ_SECONDS"]
fn fuzz_for_a_while() {
    let name = std::env::var("FUZZ_TARGET").expect("FUZZ_TARGET");
    let seconds: u64 = std::env::var("FUZZ_SECONDS").map_or(60, |s| s.parse().expect("seconds"));
    let seed: u64 = std::env::var("FUZZ_SEED").map_or(1, |s| s.parse().expect("seed"));
    let entry = target(&name).unwrap_or_else(|| panic!("no fuzz target {name}"));
    match run(
        entry,
        &corpus(&name),
        seed,
        Budget::Time(Duration::from_secs(seconds)),
    ) {
        Ok(report) => println!("{name}: {} runs in {seconds} s, no crash", report.runs),
        Err(c) => panic!("{name} panicked on {:?}: {}", c.input, c.message),
    }
}
