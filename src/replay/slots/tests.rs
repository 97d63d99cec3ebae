//! The fairness policy: shares per organisation and user, who goes next.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use super::*;

fn org(id: &str) -> OrgId {
    OrgId::new(id).unwrap()
}

fn user(id: &str) -> UserId {
    UserId::new(id).unwrap()
}

fn slots(node: usize, organization: usize, user: usize) -> Arc<Slots> {
    Slots::new(Shares {
        node,
        organization,
        user,
    })
}

impl Slots {
    fn held(&self) -> usize {
        self.state().held
    }

    fn queued(&self) -> usize {
        self.state().waiting.len()
    }
}

type Acquiring = Pin<Box<dyn Future<Output = Slot> + Send>>;

fn acquire(slots: &Arc<Slots>, o: &str, u: &str) -> Acquiring {
    let (slots, o, u) = (slots.clone(), org(o), user(u));
    Box::pin(async move { slots.acquire(&o, &u).await })
}

/// Polls once: the slot if it was granted, else the still-waiting future.
async fn try_now(mut acquiring: Acquiring) -> Result<Slot, Acquiring> {
    match futures::poll!(acquiring.as_mut()) {
        Poll::Ready(slot) => Ok(slot),
        Poll::Pending => Err(acquiring),
    }
}

async fn granted(slots: &Arc<Slots>, o: &str, u: &str) -> Slot {
    match try_now(acquire(slots, o, u)).await {
        Ok(slot) => slot,
        Err(_) => panic!("{o}/{u} should have a slot at once"),
    }
}

async fn queued(slots: &Arc<Slots>, o: &str, u: &str) -> Acquiring {
    match try_now(acquire(slots, o, u)).await {
        Ok(_) => panic!("{o}/{u} should wait"),
        Err(waiting) => waiting,
    }
}

#[tokio::test]
async fn one_user_holds_no_more_than_its_share_and_others_run_beside_it() {
    let slots = slots(4, 2, 1);
    let _hog = granted(&slots, "org-a", "hog").await;
    // The same user's other connections wait...
    let _second = queued(&slots, "org-a", "hog").await;
    let _third = queued(&slots, "org-a", "hog").await;
    // ...while another organisation's resume runs at once.
    let _other = granted(&slots, "org-b", "someone").await;
    assert_eq!(slots.held(), 2);
    assert_eq!(slots.queued(), 2);
}

#[tokio::test]
async fn one_organisation_holds_no_more_than_its_share_across_its_users() {
    let slots = slots(4, 2, 1);
    let _a1 = granted(&slots, "org-a", "u1").await;
    let _a2 = granted(&slots, "org-a", "u2").await;
    let _a3 = queued(&slots, "org-a", "u3").await;
    let _b = granted(&slots, "org-b", "u1").await;
    let _c = granted(&slots, "org-c", "u1").await;
    assert_eq!(slots.held(), 4, "the node is full, org-a has half");
}

#[tokio::test]
async fn a_freed_slot_goes_to_the_organisation_holding_fewest_not_the_oldest_waiter() {
    let slots = slots(2, 2, 2);
    let a1 = granted(&slots, "org-a", "u").await;
    let _a2 = granted(&slots, "org-a", "u").await;
    // org-a queues first, many times; org-b after it, once.
    let mut a_waiting = Vec::new();
    for _ in 0..5 {
        a_waiting.push(queued(&slots, "org-a", "u").await);
    }
    let b = queued(&slots, "org-b", "u").await;
    drop(a1);
    // org-a holds one, org-b none: org-b goes first.
    let _b = try_now(b).await.unwrap_or_else(|_| panic!("org-b is next"));
    for waiting in a_waiting {
        assert!(try_now(waiting).await.is_err(), "org-a waits for its turn");
    }
}

#[tokio::test]
async fn among_equals_the_longest_waiting_goes_first() {
    let slots = slots(1, 1, 1);
    let held = granted(&slots, "org-a", "u").await;
    let first = queued(&slots, "org-b", "u").await;
    let second = queued(&slots, "org-c", "u").await;
    drop(held);
    let second = try_now(second).await.err().expect("org-c waits");
    let first = try_now(first).await.ok().expect("org-b came first");
    drop(first);
    assert!(try_now(second).await.is_ok());
}

#[tokio::test]
async fn a_waiter_that_goes_away_leaves_the_queue_and_its_grant_is_given_on() {
    let slots = slots(1, 1, 1);
    let held = granted(&slots, "org-a", "u").await;
    let gone_early = queued(&slots, "org-b", "u").await;
    drop(gone_early);
    assert_eq!(slots.queued(), 0);
    // Granted, then dropped before it was polled again: the slot is not lost.
    let granted_then_gone = queued(&slots, "org-c", "u").await;
    let next = queued(&slots, "org-d", "u").await;
    drop(held);
    drop(granted_then_gone);
    let _next = try_now(next)
        .await
        .ok()
        .expect("the dropped grant went on to org-d");
    assert_eq!((slots.held(), slots.queued()), (1, 0));
}

#[tokio::test]
async fn releasing_lets_the_same_user_run_again_and_the_counts_return_to_zero() {
    let slots = slots(4, 2, 1);
    let first = granted(&slots, "org-a", "u").await;
    let again = queued(&slots, "org-a", "u").await;
    drop(first);
    let again = try_now(again).await.ok().expect("its turn came");
    drop(again);
    assert_eq!((slots.held(), slots.queued()), (0, 0));
    assert!(slots.state().by_org.is_empty() && slots.state().by_user.is_empty());
}

#[tokio::test]
async fn shares_are_clamped_to_the_node() {
    let slots = slots(1, 5, 5);
    let _one = granted(&slots, "org-a", "u").await;
    let _waits = queued(&slots, "org-a", "u").await;
    let _also_waits = queued(&slots, "org-b", "u").await;
}
