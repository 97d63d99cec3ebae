//! Two nodes behind nginx configured by `deploy/nginx/crm-bridge.conf.template`,
//! with the stock client's transports (long-polling, then the WebSocket
//! upgrade): each session must stay on the node that issued its sid.

mod support;

use serde_json::json;
use support::{Broker, Clients, Nginx, TestBridge, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_sessions_stick_to_their_node_through_nginx() {
    let broker = Broker::start();
    let nodes = [
        TestBridge::start(&broker).await,
        TestBridge::start(&broker).await,
    ];
    let nginx = Nginx::start(&[nodes[0].addr(), nodes[1].addr()]);
    let mut clients = Clients::spawn().await;

    for (i, node) in nodes.iter().enumerate() {
        let name = format!("client{i}");
        let source = nginx.source_for(node.addr()).await;
        clients
            .send(json!({
                "op": "connect", "client": name, "url": nginx.url(),
                "auth": {"token": token(&format!("user_{i}"), "org-1")},
                "transports": ["polling", "websocket"], "localAddress": source.to_string(),
            }))
            .await;
        let connected = clients.event(&name, "connected").await;
        assert_eq!(connected["userId"], format!("user_{i}"), "{}", nginx.logs());
        clients
            .wait_for(&format!("{name} upgrading to websocket"), |o| {
                o["client"] == name.as_str()
                    && o["type"] == "upgrade"
                    && o["transport"] == "websocket"
            })
            .await;
        let pong = clients.request(&name, "ping", json!({})).await;
        assert_eq!(pong["ok"], true, "{pong}");
    }

    for node in &nodes {
        assert_eq!(
            node.stats().await["clientsConnected"],
            1,
            "one client per node; nginx: {}",
            nginx.logs()
        );
    }
}
