//! The crate's layering, as `src/lib.rs` declares it (the `text` block of
//! layers after "Imports point down these layers"), holds: outside test
//! code, every `crate::<module>` path in a top-level module names a module
//! on a lower layer. So does `src/gateway/mod.rs`'s, for the `super::`
//! paths between its files, and its seam is pure. Reads the sources; needs
//! nothing running.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Each top-level module's layer, 0 the lowest, from `src/lib.rs`.
fn declared_layers() -> HashMap<String, usize> {
    layers_in("lib.rs")
}

/// The layers `file` (under `src/`) declares for its modules, 0 the lowest.
fn layers_in(file: &str) -> HashMap<String, usize> {
    let lib = std::fs::read_to_string(src().join(file)).unwrap();
    let block: Vec<&str> = lib
        .split("Imports point down these layers")
        .nth(1)
        .unwrap_or_else(|| panic!("{file} declares its layers"))
        .lines()
        .map(|line| line.trim_start_matches("//!").trim())
        .skip_while(|line| *line != "```text")
        .skip(1)
        .take_while(|line| *line != "```")
        .collect();
    let top = block.len();
    block
        .iter()
        .enumerate()
        .flat_map(|(row, line)| {
            line.split_whitespace()
                .map(move |module| (module.to_owned(), top - 1 - row))
        })
        .collect()
}

/// The non-test Rust files under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "tests" {
                sources(&path, out);
            }
        } else if name.ends_with(".rs") && !name.ends_with("tests.rs") {
            out.push(path);
        }
    }
}

/// `text` up to its `#[cfg(test)]` module, if any.
fn without_tests(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod ")
        .map_or(text, |at| &text[..at])
}

#[test]
fn every_import_points_down_the_declared_layers() {
    let layers = declared_layers();
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src()).unwrap().to_owned();
        let first = relative.components().next().unwrap().as_os_str();
        let me = first.to_string_lossy().trim_end_matches(".rs").to_owned();
        if me == "lib" || me == "main" {
            continue;
        }
        let my_layer = *layers
            .get(&me)
            .unwrap_or_else(|| panic!("src/lib.rs gives module {me} no layer"));
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in without_tests(&text).lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let other: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if other == me || other.is_empty() {
                    continue;
                }
                let Some(&layer) = layers.get(&other) else {
                    continue; // a macro path or an item of the crate root
                };
                if layer >= my_layer {
                    wrong.push(format!(
                        "src/{}:{}: {me} imports {other}, which is not below it",
                        relative.display(),
                        number + 1
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against src/lib.rs's layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_module_has_a_layer() {
    let layers = declared_layers();
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(module) = line.strip_prefix("pub mod ") {
            let module = module.trim_end_matches(';');
            assert!(layers.contains_key(module), "no layer for {module}");
        }
    }
}

/// The modules a line names through `prefix` (`super::a`, `super::{a, b}`).
fn named_after<'a>(line: &'a str, prefix: &str) -> Vec<&'a str> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    line.match_indices(prefix)
        .flat_map(|(at, _)| {
            let rest = &line[at + prefix.len()..];
            match rest.strip_prefix('{') {
                Some(group) => group
                    .split('}')
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .map(|name| name.trim().split("::").next().unwrap_or(""))
                    .collect::<Vec<_>>(),
                None => vec![&rest[..rest.find(|c: char| !is_name(c)).unwrap_or(rest.len())]],
            }
        })
        .collect()
}

/// `file`'s lines outside comments and test code.
fn code_lines(file: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    without_tests(&text)
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .map(|(number, line)| (number + 1, line.to_owned()))
        .collect()
}

#[test]
fn every_import_inside_the_gateway_points_down_its_layers() {
    let layers = layers_in("gateway/mod.rs");
    let dir = src().join("gateway");
    let mut wrong = Vec::new();
    for (me, my_layer) in &layers {
        let file = dir.join(format!("{me}.rs"));
        assert!(file.exists(), "gateway/mod.rs names {me}, not a file");
        for (number, line) in code_lines(&file) {
            for other in named_after(&line, "super::") {
                let Some(layer) = layers.get(other) else {
                    continue; // an item of gateway/mod.rs
                };
                if layer >= my_layer {
                    wrong.push(format!(
                        "src/gateway/{me}.rs:{number}: {me} imports {other}, which is not below it"
                    ));
                }
            }
        }
    }
    let files = std::fs::read_dir(&dir).unwrap();
    for name in files.map(|entry| entry.unwrap().file_name().into_string().unwrap()) {
        if let Some(module) = name.strip_suffix(".rs").filter(|m| *m != "mod") {
            assert!(
                layers.contains_key(module),
                "gateway/mod.rs gives {module} no layer"
            );
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against src/gateway/mod.rs's layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_delivery_seam_is_pure() {
    // `access` is pure too: the seam holds each waiting event's hidden
    // fields (`Mask`), decided before it waits.
    let allowed = ["access", "domain", "protocol", "routing"];
    for (number, line) in code_lines(&src().join("gateway/seam.rs")) {
        let at = format!("src/gateway/seam.rs:{number}");
        assert!(!line.contains("super::"), "{at}: the seam uses the gateway");
        for other in named_after(&line, "crate::") {
            assert!(allowed.contains(&other), "{at}: the seam imports {other}");
        }
        for io in [
            "socketioxide",
            "rdkafka",
            "tokio::",
            "std::time",
            "std::net",
            "Instant",
        ] {
            assert!(!line.contains(io), "{at}: the seam uses {io}");
        }
    }
}
