//! A rolling restart of two nodes behind nginx loses and repeats nothing:
//! 200 clients with the client module's resume, subscribed while a feed
//! produces; each node in turn is stopped with SIGTERM and started again
//! with the same node id (`support::rolling`). The timings are the
//! benchmark's (`bench/rolling_restart.rs`); this test asserts none.

mod support;

use std::time::Duration;

use support::Broker;
use support::fleet::Reconnection;
use support::rolling::{NODES, Plan, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_behind_nginx_loses_and_repeats_nothing() {
    let broker = Broker::start();
    let plan = Plan {
        clients: 200,
        pipelines: 10,
        rate: 50,
        steady: Duration::from_secs(2),
        // No delay (nothing here watches /readyz), and the sockets closed
        // in eight paced batches, not at once.
        env: [
            ("CRM_BRIDGE_DRAIN__DELAY_SECONDS", "0"),
            ("CRM_BRIDGE_DRAIN__BATCH_SIZE", "25"),
            ("CRM_BRIDGE_DRAIN__BATCH_INTERVAL_MS", "50"),
        ]
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .into(),
        // Quicker than the stock client's, to keep the test short.
        reconnection: Reconnection {
            delay_ms: 100,
            delay_max_ms: 500,
        },
        connect_patience: support::PATIENCE,
    };
    let outcome = run(&broker, &plan).await;
    let report = &outcome.report;
    assert!(outcome.produced > 0);
    assert_eq!(outcome.lost, 0, "records lost");
    assert_eq!(report.duplicates, 0, "records repeated");
    assert_eq!(report.out_of_order, 0, "positions out of order");
    assert_eq!(report.misrouted, 0, "records of another pipeline");
    assert_eq!(report.errors, 0, "error events or refused subscriptions");
    assert_eq!(report.unrecovered, 0, "reconnects with a gap");
    for (restart, node) in outcome.restarts.iter().zip(NODES) {
        assert!(
            !restart.outages.is_empty(),
            "{node}'s restart cut off no client: did nginx send none to it?"
        );
        assert!(restart.outages.iter().all(|o| o.recovered_at.is_some()));
    }
}
