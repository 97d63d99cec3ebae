//! Copies socket.io-client's browser build (npm, `web/package.json`) into the
//! binary's build, for the dashboard (`src/http/web.rs`). Without it (no
//! `make deps` yet) the bridge still builds and runs; its dashboard then
//! says how to get it.

use std::path::Path;

const VENDOR: &str = "web/node_modules/socket.io-client/dist/socket.io.esm.min.js";

/// What the page loads instead: an `io` that explains what is missing.
const MISSING: &str = "export function io() {\n  throw new Error(\"socket.io-client is not built into this bridge: run `make deps` (npm ci in web/), then build again\");\n}\n";

fn main() {
    println!("cargo:rerun-if-changed={VENDOR}");
    println!("cargo:rerun-if-changed=web/package-lock.json");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("socket.io.esm.min.js");
    let content = match std::fs::read_to_string(VENDOR) {
        Ok(content) => content,
        Err(_) => {
            println!(
                "cargo:warning=no {VENDOR}: run `make deps` for the dashboard's socket.io-client"
            );
            MISSING.to_owned()
        }
    };
    std::fs::write(out, content).expect("writing to OUT_DIR");
}
