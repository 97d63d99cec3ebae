//! A TCP proxy standing in for a load balancer: it forwards to one bridge
//! node, and `switch` moves it to another, cutting every open connection
//! (as a node failure or a deploy would). `down` cuts the network instead:
//! open connections close and new ones are refused until `up`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub url: String,
    target: Arc<Mutex<SocketAddr>>,
    generation: watch::Sender<u64>,
    down: Arc<AtomicBool>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let target = Arc::new(Mutex::new(target));
        let (generation, _) = watch::channel(0u64);
        let down = Arc::new(AtomicBool::new(false));
        let (shared, gen_tx, is_down) = (target.clone(), generation.clone(), down.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if is_down.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees its connection close
                }
                let to = *shared.lock().unwrap();
                let mut cut = gen_tx.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(to).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            url,
            target,
            generation,
            down,
        }
    }

    /// The network goes away: open connections are cut, new ones closed at once.
    pub fn down(&self) {
        self.down.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// The network is back.
    pub fn up(&self) {
        self.down.store(false, Ordering::SeqCst);
    }

    /// Sends new connections to `target` and cuts the open ones.
    pub fn switch(&self, target: SocketAddr) {
        *self.target.lock().unwrap() = target;
        self.generation.send_modify(|g| *g += 1);
    }
}
