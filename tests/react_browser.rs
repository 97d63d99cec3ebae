//! crm-bridge-client/react (`client/react.js`) in a real browser: Debian's
//! headless Chromium, driven by playwright-core (`tests/browser/react.mjs`),
//! against the bridge in dev mode behind a TCP proxy (the network the test
//! can cut), with a real broker and an independent producer. The page's
//! components connect through the provider, share a subscription through
//! the hooks, and recover a dropped connection; beside them, the seed's
//! React hook and usage example, with the fixes `client/README.md` lists,
//! receive a contact's update. The hooks' unit tests: `client/test/`.

mod support;

use std::time::Duration;

use support::browser::{dev_mode, run_scenario};
use support::proxy::Proxy;
use support::{Broker, Producer, TestBridge};

/// The whole browser scenario; each of its steps waits for a condition.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_share_a_subscription_and_recover_a_drop_and_the_seeds_hook_gets_its_contact() {
    assert!(
        support::repo_path("client/node_modules/esbuild").exists(),
        "run `make deps` (npm ci in client: React, esbuild)"
    );
    let broker = Broker::start();
    let bridge = TestBridge::start_with(&broker, dev_mode).await;
    let proxy = Proxy::start(bridge.addr()).await;
    let producer = Producer::new(&broker);
    run_scenario(
        "react.mjs",
        &[&proxy.url],
        &producer,
        &proxy,
        SCENARIO_TIMEOUT,
    )
    .await;
    bridge.stop().await;
}
