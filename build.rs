//! Copies socket.io-client's browser build (npm, `web/package.json`) into the
//! binary's build, for the dashboard (`src/http/web.rs`). Without it (no
//! `make deps` yet) the bridge still builds and runs; its dashboard then
//! says how to get it.
//!
//! Also names the commit built, as `GIT_COMMIT` (not `CRM_BRIDGE_*`: cargo
//! sets it when running tests too, and the configuration reads that prefix) for
//! `crm_bridge_build_info` (`src/metrics/kinds.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

const VENDOR: &str = "web/node_modules/socket.io-client/dist/socket.io.esm.min.js";

/// What the page loads instead: an `io` that explains what is missing.
const MISSING: &str = "export function io() {\n  throw new Error(\"socket.io-client is not built into this bridge: run `make deps` (npm ci in web/), then build again\");\n}\n";

fn main() {
    println!("cargo:rustc-env=GIT_COMMIT={}", commit());
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

/// `GIT_COMMIT` when the build sets it (the image does: its build
/// has no `.git`), else `git rev-parse --short HEAD` in a checkout, else
/// "unknown". Reruns only when the variable, `HEAD` or the branch it names
/// moves, not on every build: a new commit rebuilds the crate once.
fn commit() -> String {
    println!("cargo:rerun-if-env-changed=GIT_COMMIT");
    if let Some(commit) = std::env::var("GIT_COMMIT").ok().filter(|c| !c.is_empty()) {
        return commit;
    }
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".to_owned();
    };
    // A worktree has its own HEAD; branches and packed refs are shared.
    let git_dir = git(&["rev-parse", "--git-dir"]).map(PathBuf::from);
    let common = git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from);
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let watched = [
        git_dir.map(|dir| dir.join("HEAD")),
        common.as_ref().zip(branch).map(|(dir, r)| dir.join(r)),
        common.map(|dir| dir.join("packed-refs")),
    ];
    // A path that does not exist would rerun the script on every build.
    for path in watched.into_iter().flatten().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    head
}

/// What git prints, trimmed; `None` outside a checkout or without git.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    out.status.success().then(|| text.trim().to_owned())
}
