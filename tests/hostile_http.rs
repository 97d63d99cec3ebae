//! Hostile HTTP before any Socket.IO handshake: slow request heads
//! (slowloris), oversized heads, and Engine.IO sessions opened in a loop
//! that never CONNECT. Each is bounded; the raw client here speaks HTTP/1.1
//! over a TCP socket, as an attacker would.

mod support;

use std::time::Duration;

use support::process::BridgeProcess;
use support::{Broker, TestBridge, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; what it sent.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    // Generous: the bound under test is the server's timeout, not this one.
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the server never closed the connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_request_heads_are_cut_off_after_the_header_timeout() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| c.guard.header_read_timeout_seconds = 1).await;
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(bridge.addr()).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    // An idle keep-alive connection is cut off too, after its first answer.
    let mut idle = TcpStream::connect(bridge.addr()).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    for stream in &mut slow {
        read_to_close(stream).await;
    }
    assert!(read_to_close(&mut idle).await.starts_with("HTTP/1.1 200"));
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_head_is_refused() {
    let broker = Broker::start();
    let bridge = TestBridge::start(&broker).await;
    let mut stream = TcpStream::connect(bridge.addr()).await.unwrap();
    let headers: String = (0..90)
        .map(|i| format!("X-Big-{i}: {}\r\n", "a".repeat(4000)))
        .collect();
    let request =
        format!("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
    // The server may close while the rest is still being written.
    let _ = stream.write_all(request.as_bytes()).await;
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.80}");
    bridge.stop().await;
}

/// Opens an Engine.IO session by polling and never connects to Socket.IO;
/// the answer's status line.
async fn open_session(addr: std::net::SocketAddr, padding: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Pad: {padding}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stream).await;
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_opened_in_a_loop_are_refused_with_retry_after() {
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, |c| {
        c.guard.engine_opens_per_second_per_address = 1;
        c.guard.engine_open_burst = 3;
    })
    .await;
    let answers = futures::future::join_all((0..10).map(|_| open_session(bridge.addr(), ""))).await;
    let refused = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 429"))
        .count();
    assert!(refused >= 5, "{answers:?}");
    let stats = bridge.stats().await;
    assert_eq!(
        stats["connectionsRefused"]["engine_open_rate"].as_u64(),
        Some(refused as u64),
        "{stats}"
    );
    bridge.stop().await;
}

/// The probe's attack, against the real binary: a client opening sessions
/// with ~30 KB heads as fast as it can, never connecting. Memory stays
/// within the bound the defaults give (SECURITY.md): at most
/// `(burst + rate × connect timeout) × head bytes` = (100 + 40 × 10) × 32 KB
/// ≈ 16 MB of heads, plus engineioxide's per-session state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_sessions_cannot_exhaust_memory() {
    const BOUND: u64 = 64 << 20;
    let broker = Broker::start();
    let bridge = BridgeProcess::start(&broker, free_port(), "memory").await;
    let addr: std::net::SocketAddr = bridge.url.trim_start_matches("http://").parse().unwrap();
    let before = bridge.rss_bytes();
    let padding = "p".repeat(30 * 1024);
    let mut opened = 0;
    let mut refused = 0;
    // 3,000 attempts: before the limits, each open held ~30 KB for 45 s
    // (90 MB here); the probe's 95 a second for 20 s held 1.6 GB.
    for _ in 0..300 {
        let batch = futures::future::join_all((0..10).map(|_| open_session(addr, &padding))).await;
        for status in batch {
            match status.get(9..12) {
                Some("200") => opened += 1,
                Some("429") => refused += 1,
                other => panic!("unexpected answer {other:?}"),
            }
        }
    }
    let grown = bridge.rss_bytes().saturating_sub(before);
    assert!(
        grown < BOUND,
        "{opened} sessions opened, {refused} refused: memory grew by {} MB",
        grown >> 20
    );
    assert!(refused > 0, "the limit never applied ({opened} opened)");
}
