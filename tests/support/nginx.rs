//! nginx in front of bridge nodes, configured by the production template
//! `deploy/nginx/crm-bridge.conf.template`: owns the nginx process, its free
//! loopback port and its scratch directory, all gone on drop. Every response
//! carries `X-Served-By` (the node's address), which `source_for` uses to find
//! a client address nginx's `hash $remote_addr` sends to a given node.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::wait::eventually_blocking;
use super::{free_port, repo_path};

const NGINX: &str = "/usr/sbin/nginx";

pub struct Nginx {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Nginx {
    /// Starts nginx on a free port of 127.0.0.1, balancing over `upstreams`.
    pub fn start(upstreams: &[SocketAddr]) -> Self {
        Self::start_for(upstreams, 0, "")
    }

    /// As [`start`](Self::start), for `clients` connections at once, with
    /// `parameters` on every `server` line (e.g. `max_fails=0`). Each
    /// client holds two of the worker's connections (its own and the
    /// upstream's), and while clients reconnect the closing ones linger:
    /// measured, 2,000 clients reconnecting overran 4,064 (nginx warned
    /// "worker_connections are not enough" and cut connections), so twice
    /// as many.
    pub fn start_for(upstreams: &[SocketAddr], clients: usize, parameters: &str) -> Self {
        assert!(
            std::path::Path::new(NGINX).exists(),
            "{NGINX} is missing: run `make deps`"
        );
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let dir = std::env::temp_dir().join(format!("crm-bridge-nginx-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let servers: String = upstreams
            .iter()
            .map(|u| format!("server {u} {parameters}; "))
            .collect();
        let site = std::fs::read_to_string(repo_path("deploy/nginx/crm-bridge.conf.template"))
            .unwrap()
            .replace("${CRM_BRIDGE_LISTEN}", &addr.to_string())
            .replace("${CRM_BRIDGE_UPSTREAM_SERVERS}", &servers);
        let d = dir.display();
        let connections = (4 * clients + 64).max(512);
        let config = format!(
            "daemon off; master_process on; worker_processes 1;\n\
             pid {d}/nginx.pid; error_log {d}/error.log warn;\n\
             events {{ worker_connections {connections}; }}\n\
             http {{\n\
             access_log off; add_header X-Served-By $upstream_addr always;\n\
             client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
             {site}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), config).unwrap();
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("starting nginx");
        // Stopped on drop, should the wait fail.
        let mut nginx = Self { child, dir, addr };
        let listening = || {
            let connected = std::net::TcpStream::connect(addr).map(drop);
            if connected.is_err() {
                let exited = nginx.child.try_wait().unwrap();
                let logs = logs(&nginx.dir);
                assert!(exited.is_none(), "nginx exited ({exited:?}): {logs}");
            }
            connected
        };
        eventually_blocking(
            &format!("nginx to listen on {addr}"),
            listening,
            Result::is_ok,
        );
        nginx
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A loopback source address (127.0.0.2, .3, ...) whose requests nginx
    /// sends to `upstream`: bind a client to it to land on that node.
    pub async fn source_for(&self, upstream: SocketAddr) -> IpAddr {
        for n in 2..=250 {
            let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, n));
            let client = reqwest::Client::builder()
                .local_address(source)
                .build()
                .unwrap();
            let response = client
                .get(format!("{}/healthz", self.url()))
                .send()
                .await
                .expect("GET /healthz through nginx");
            assert!(response.status().is_success(), "{response:?}");
            if response.headers()["x-served-by"] == upstream.to_string() {
                return source;
            }
        }
        panic!("no loopback source address reaches {upstream} through nginx")
    }

    /// nginx's error log and stderr, for failure messages.
    pub fn logs(&self) -> String {
        logs(&self.dir)
    }
}

/// The error log and stderr of the nginx running in `dir`.
fn logs(dir: &std::path::Path) -> String {
    let read = |name| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    format!("{}{}", read("error.log"), read("stderr.log"))
}

/// SIGTERM, not SIGKILL: the master then stops its worker, which would
/// otherwise outlive it, holding the port.
impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        // A grace period, not a wait that can fail: SIGKILL follows it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
