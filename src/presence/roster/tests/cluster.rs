//! Other instances: their joins, typing and leaving, their silence and
//! `bye`, snapshots and `hello`.

use super::*;

#[test]
fn a_remote_user_joins_types_and_leaves() {
    let mut r = roster();
    let pipeline = room("org-a", "p1");
    join(&mut r, &pipeline, 1, "alice", 0);
    let joined = r.apply(
        &from(
            "peer",
            10,
            Message::Join {
                member: member(&pipeline, "bob"),
            },
        ),
        11,
    );
    assert_eq!(notices(&joined), [("user-joined", vec![1], "bob".into())]);
    let typing = Message::Typing {
        room: pipeline.clone(),
        user: user("bob"),
        name: "BOB".into(),
        field: "notes".into(),
    };
    // A peer whose clock is a minute behind: timed by this node's clock.
    let typed = r.apply(&from("peer", 20, typing), 60_021);
    assert_eq!(notices(&typed), [("user-typing", vec![1], "bob".into())]);
    let expires = typed.notices[0].payload["expiresAt"].clone();
    assert_eq!(expires, crate::protocol::format_millis(60_021 + 5000));
    let left = r.apply(
        &from(
            "peer",
            30,
            Message::Leave {
                room: pipeline.clone(),
                user: user("bob"),
            },
        ),
        31,
    );
    assert_eq!(notices(&left), [("user-left", vec![1], "bob".into())]);
}

#[test]
fn a_user_on_two_nodes_leaves_when_both_are_gone() {
    let mut r = roster();
    let pipeline = room("org-a", "p1");
    join(&mut r, &pipeline, 1, "alice", 0);
    join(&mut r, &pipeline, 2, "bob", 0);
    let remote_bob = r.apply(
        &from(
            "peer",
            5,
            Message::Join {
                member: member(&pipeline, "bob"),
            },
        ),
        5,
    );
    assert!(remote_bob.notices.is_empty(), "bob is already here");
    let local_gone = r.leave(&pipeline, ClientId(2), 10).unwrap();
    assert!(
        local_gone.notices.is_empty(),
        "bob is still on the other node"
    );
    let leave = Message::Leave {
        room: pipeline.clone(),
        user: user("bob"),
    };
    let remote_gone = r.apply(&from("peer", 20, leave), 20);
    assert_eq!(
        notices(&remote_gone),
        [("user-left", vec![1], "bob".into())]
    );
}

#[test]
fn a_silent_node_times_out_and_its_users_leave() {
    let mut r = roster();
    let pipeline = room("org-a", "p1");
    join(&mut r, &pipeline, 1, "alice", 0);
    r.apply(
        &from(
            "peer",
            0,
            Message::Join {
                member: member(&pipeline, "bob"),
            },
        ),
        0,
    );
    r.apply(&from("peer", 2000, Message::Heartbeat), 2000);
    assert!(
        r.expire(2000 + TIMING.node_timeout).notices.is_empty(),
        "heard within the timeout"
    );
    let expired = r.expire(2001 + TIMING.node_timeout);
    assert_eq!(notices(&expired), [("user-left", vec![1], "bob".into())]);
    assert_eq!(r.peer_count(), 0);
}

#[test]
fn bye_releases_a_nodes_users_at_once() {
    let mut r = roster();
    let pipeline = room("org-a", "p1");
    join(&mut r, &pipeline, 1, "alice", 0);
    r.apply(
        &from(
            "peer",
            0,
            Message::Join {
                member: member(&pipeline, "bob"),
            },
        ),
        0,
    );
    let bye = r.apply(&from("peer", 10, Message::Bye), 10);
    assert_eq!(notices(&bye), [("user-left", vec![1], "bob".into())]);
}

#[test]
fn a_snapshot_replaces_what_a_node_holds() {
    let mut r = roster();
    let pipeline = room("org-a", "p1");
    join(&mut r, &pipeline, 1, "alice", 0);
    r.apply(
        &from(
            "peer",
            0,
            Message::Join {
                member: member(&pipeline, "bob"),
            },
        ),
        0,
    );
    let first = Message::Snapshot {
        reset: true,
        last: false,
        members: vec![member(&pipeline, "carol")],
    };
    assert!(
        r.apply(&from("peer", 10, first), 10).notices.is_empty(),
        "applied at the last record"
    );
    let last = Message::Snapshot {
        reset: false,
        last: true,
        members: vec![member(&pipeline, "dave")],
    };
    let mut seen = notices(&r.apply(&from("peer", 20, last), 20));
    seen.sort();
    assert_eq!(
        seen,
        [
            ("user-joined", vec![1], "carol".into()),
            ("user-joined", vec![1], "dave".into()),
            ("user-left", vec![1], "bob".into()),
        ]
    );
}

#[test]
fn hello_is_answered_with_everything_held_here() {
    let mut r = roster();
    join(&mut r, &room("org-a", "p1"), 1, "alice", 0);
    join(&mut r, &room("org-b", "p1"), 2, "bob", 0);
    let answer = r.apply(&from("newcomer", 0, Message::Hello), 0);
    let [
        Message::Snapshot {
            reset: true,
            last: true,
            members,
        },
    ] = &answer.publish[..]
    else {
        panic!("expected one snapshot record: {:?}", answer.publish);
    };
    let mut held: Vec<(&str, &str)> = members
        .iter()
        .map(|m| (m.room.org.as_str(), m.user.as_str()))
        .collect();
    held.sort_unstable();
    assert_eq!(held, [("org-a", "alice"), ("org-b", "bob")]);
}

#[test]
fn an_unknown_node_is_asked_for_its_snapshot_once() {
    let mut r = roster();
    let first = r.apply(&from("peer", 0, Message::Heartbeat), 0);
    assert!(matches!(&first.publish[..], [Message::SyncRequest { to }] if &**to == "peer"));
    assert!(!r.is_synced());
    assert!(
        r.apply(&from("peer", 1000, Message::Heartbeat), 1000)
            .publish
            .is_empty()
    );
    let empty = Message::Snapshot {
        reset: true,
        last: true,
        members: vec![],
    };
    r.apply(&from("peer", 1500, empty), 1500);
    assert!(r.is_synced());
    let own = r.apply(&from("me", 1600, Message::Heartbeat), 1600);
    assert!(
        own.publish.is_empty() && r.peer_count() == 1,
        "its own records are ignored"
    );
}

#[test]
fn a_large_snapshot_is_split_into_records_kafka_accepts() {
    let mut r = roster();
    let long_id = "r".repeat(256);
    for socket in 0..3000 {
        let at = room("org-a", &format!("{long_id}{socket}"));
        join(&mut r, &at, socket, &format!("user{socket}"), 0);
    }
    let records = r.snapshot();
    assert!(records.len() > 1, "{} records", records.len());
    let mut members = 0;
    for (i, record) in records.iter().enumerate() {
        let size = serde_json::to_vec(record).unwrap().len();
        assert!(size < 600 * 1024, "record {i} is {size} bytes");
        let Message::Snapshot {
            reset,
            last,
            members: part,
        } = record
        else {
            panic!("not a snapshot");
        };
        assert_eq!((*reset, *last), (i == 0, i + 1 == records.len()));
        members += part.len();
    }
    assert_eq!(members, 3000);

    // A peer that missed the first record ignores the rest until a new one.
    let mut peer = roster();
    let tail = from("big", 0, records[1].clone());
    peer.apply(&tail, 0);
    assert!(!peer.is_synced());
}
