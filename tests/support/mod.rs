//! Test harness: a real broker (Apache Kafka), the bridge started in-process on a
//! free port, the official socket.io-client driven through Node, and a
//! producer of records the bridge's encoder writes. Everything binds to 127.0.0.1 and is
//! torn down when the test ends, pass or fail.
#![allow(dead_code, unused_imports)] // each test file uses a different part of the harness

pub mod avro;
pub mod bridge;
pub mod broker;
pub mod browser;
pub mod clients;
pub mod fleet;
pub mod hostile;
pub mod idp;
pub mod nginx;
pub mod otlp;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod rolling;
pub mod semantics;
pub mod steady;
pub mod wait;

pub use avro::Producer;
pub use bridge::{TEST_API_KEY, TestBridge, token};

pub use broker::Broker;
pub use clients::Clients;
pub use nginx::Nginx;
pub use registry::Registry;
pub use wait::{PATIENCE, eventually};

/// A loopback port for a server a test starts as a child process that
/// must be told its port before it binds and cannot report the one it
/// bound: a Kafka node (each node's listeners, advertised addresses and
/// the controller quorum's voters are configured before any node starts,
/// and a restarted node comes back on the same ports), the registry's JVM,
/// nginx, and the bridge binary (restarted on the same port, so that its
/// clients reconnect to the URL they had). A server in the test process
/// itself (the in-process bridge, the IdP, the proxy, the OTLP receiver)
/// binds `127.0.0.1:0` and serves on that listener, so its port is never
/// dropped and bound again.
///
/// Not `bind(0)` here: that hands out a port of the kernel's ephemeral
/// range (32768-60999 on Linux), which every outgoing connection of a
/// parallel test draws from too, so it can be taken before the child binds
/// it. These come from below that range, each at most once per test
/// binary, starting at a place of this process's own (so two binaries
/// rarely meet), and each free when handed out (a bind proves it).
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % COUNT,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % COUNT) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + COUNT);
}

pub fn repo_path(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Wall-clock time in ms, fractional: the clock the Node driver stamps
/// observations with (`at`), so latencies can span both processes.
pub fn wall_clock_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}
