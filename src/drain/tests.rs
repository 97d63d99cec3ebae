use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{DrainConfig, OpenConnections};

fn pace(batch_size: usize, batch_interval_ms: u64) -> DrainConfig {
    DrainConfig {
        delay_seconds: 0,
        batch_size,
        batch_interval_ms,
    }
}

#[test]
fn closing_takes_one_interval_between_batches() {
    let config = pace(200, 100);
    assert_eq!(config.close_time(0), Duration::ZERO);
    assert_eq!(config.close_time(200), Duration::ZERO);
    assert_eq!(config.close_time(201), Duration::from_millis(100));
    assert_eq!(
        DrainConfig::default().close_time(15_000),
        Duration::from_millis(7_400)
    );
    assert!(pace(0, 100).validate().is_err());
}

/// `n` connections over loopback: the server's ends, tracked, and the
/// clients' ends.
async fn connections(
    register: &Arc<OpenConnections>,
    n: usize,
) -> (Vec<super::DrainableStream>, Vec<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (mut servers, mut clients) = (Vec::new(), Vec::new());
    for _ in 0..n {
        clients.push(TcpStream::connect(addr).await.unwrap());
        servers.push(register.track(listener.accept().await.unwrap().0).0);
    }
    (servers, clients)
}

#[tokio::test(start_paused = true)]
async fn ended_connections_read_the_end_and_their_clients_see_them_close() {
    let register = Arc::new(OpenConnections::default());
    let (servers, mut clients) = connections(&register, 5).await;
    assert_eq!(register.len(), 5);
    // Each server end is served as hyper would: read until the end, then drop.
    let served: Vec<_> = servers
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut buf = [0; 16];
                let read = stream.read(&mut buf).await.unwrap();
                let write = stream.write_all(b"late").await;
                (read, write.is_err())
            })
        })
        .collect();
    let started = tokio::time::Instant::now();
    assert_eq!(register.close_paced(&pace(2, 100)).await, 5);
    assert_eq!(started.elapsed(), Duration::from_millis(200), "3 batches");
    for served in served {
        assert_eq!(served.await.unwrap(), (0, true), "the end, then no writes");
    }
    assert_eq!(register.len(), 0, "dropped streams leave the register");
    for client in &mut clients {
        let mut buf = [0; 16];
        assert_eq!(client.read(&mut buf).await.unwrap(), 0, "closed");
    }
}

#[tokio::test(start_paused = true)]
async fn batches_are_paced() {
    let register = Arc::new(OpenConnections::default());
    let (servers, _clients) = connections(&register, 4).await;
    let ends: Vec<_> = servers
        .into_iter()
        .map(|mut stream| {
            tokio::spawn(async move {
                let mut buf = [0; 1];
                let _ = stream.read(&mut buf).await;
                tokio::time::Instant::now()
            })
        })
        .collect();
    let started = tokio::time::Instant::now();
    register.close_paced(&pace(1, 50)).await;
    let mut offsets = Vec::new();
    for end in ends {
        offsets.push(end.await.unwrap() - started);
    }
    offsets.sort();
    let expected: Vec<_> = (0..4).map(|i| Duration::from_millis(50 * i)).collect();
    assert_eq!(offsets, expected);
}
