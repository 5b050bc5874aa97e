//! amcctl's end-to-end tests, one binary: a module per command group, the
//! property, fault and crash tests beside the commands they exercise, and
//! the harness in `support` (the real binary in a hermetic home, a fake AMC
//! server, a probe of the store's rows).
//!
//! The slow stress tests live in modules named `slow`: `cargo test --test it
//! -- --skip ::slow::` (or `cargo nextest run --profile quick`) leaves them
//! out while developing; `cargo test --workspace` runs everything.

mod amc;
mod audit;
mod auth;
mod cli;
mod db;
mod health;
mod instance;
mod secrets;
mod support;
mod usage;

/// Every `.rs` file under tests/it is declared as a module, so that no
/// test is silently left out of the binary.
#[test]
fn every_test_file_is_a_module() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let mut missing = Vec::new();
    check_dir(&root, &root.join("main.rs"), &mut missing);
    assert!(
        missing.is_empty(),
        "files under tests/it that no module declares:\n{}",
        missing.join("\n")
    );
}

/// Checks that `parent` declares each file and folder of `dir` as a module.
fn check_dir(dir: &std::path::Path, parent: &std::path::Path, missing: &mut Vec<String>) {
    let declared = std::fs::read_to_string(parent).expect("read a module file");
    let declares = |name: &str| {
        declared.lines().any(|l| {
            let l = l.trim();
            l.strip_prefix("pub ").unwrap_or(l) == format!("mod {name};")
        })
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("list a test folder")
        .map(|e| e.expect("read a test folder").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        if path.is_dir() {
            let module = path.join("mod.rs");
            if module.exists() {
                if !declares(&name) {
                    missing.push(path.display().to_string());
                }
                check_dir(&path, &module, missing);
            }
        } else if path.extension().is_some_and(|e| e == "rs")
            && !matches!(name.as_str(), "main" | "mod")
            && !declares(&name)
        {
            missing.push(path.display().to_string());
        }
    }
}
