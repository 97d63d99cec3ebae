//! Test harness: a real broker (Apache Kafka), the bridge started in-process on a
//! free port, the official socket.io-client driven through Node, and a
//! producer with its own Avro encoding. Everything binds to 127.0.0.1 and is
//! torn down when the test ends, pass or fail.
#![allow(dead_code, unused_imports)] // each test file uses a different part of the harness

pub mod avro;
pub mod bridge;
pub mod broker;
pub mod clients;
pub mod hostile;
pub mod idp;
pub mod nginx;
pub mod otlp;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod semantics;

pub use avro::Producer;
pub use bridge::{TEST_API_KEY, TestBridge, token};

pub use broker::Broker;
pub use clients::Clients;
pub use nginx::Nginx;
pub use registry::Registry;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
