use super::*;
use crate::domain::{OrgId, RoomKind};

const TIMING: Timing = Timing {
    typing_throttle: 1000,
    typing_ttl: 5000,
    node_timeout: 3000,
};

/// Sockets are plain numbers here; the roster only clones them.
type Socket = u64;

fn roster() -> Roster<Socket> {
    Roster::new("me".into(), TIMING)
}

fn room(org: &str, id: &str) -> RoomKey {
    RoomKey {
        org: OrgId::new(org).unwrap(),
        kind: RoomKind::Pipeline,
        id: id.into(),
    }
}

fn user(id: &str) -> UserId {
    UserId::new(id).unwrap()
}

fn join(
    r: &mut Roster<Socket>,
    at: &RoomKey,
    socket: Socket,
    who: &str,
    now: u64,
) -> (RoomView, Effects<Socket>) {
    r.join(
        at,
        ClientId(socket),
        socket,
        &user(who),
        &who.to_uppercase(),
        now,
    )
}

/// (event, recipients, userId) of every notice.
fn notices(effects: &Effects<Socket>) -> Vec<(&'static str, Vec<Socket>, String)> {
    effects
        .notices
        .iter()
        .map(|n| {
            let mut to = n.to.clone();
            to.sort_unstable();
            let who = n.payload["userId"].as_str().unwrap_or_default().to_owned();
            (n.event, to, who)
        })
        .collect()
}

fn from(peer: &str, at: u64, message: Message) -> Envelope {
    Envelope {
        from: peer.into(),
        node: "node".into(),
        at,
        message,
    }
}

fn member(at: &RoomKey, who: &str) -> Member {
    Member {
        room: at.clone(),
        user: user(who),
        name: who.to_uppercase().into(),
    }
}

#[test]
fn the_room_hears_a_join_and_the_joiner_sees_who_is_there() {
    let mut r = roster();
    let pipeline = room("org-a", "p1");
    let (view, effects) = join(&mut r, &pipeline, 1, "alice", 10);
    assert!(view.members.is_empty());
    assert!(effects.notices.is_empty(), "nobody to tell");
    assert!(
        matches!(&effects.publish[..], [Message::Join { member: m }] if m.user == user("alice"))
    );

    let (view, effects) = join(&mut r, &pipeline, 2, "bob", 20);
    assert_eq!(notices(&effects), [("user-joined", vec![1], "bob".into())]);
    assert_eq!(effects.notices[0].payload["userName"], "BOB");
    assert_eq!(effects.notices[0].payload["roomType"], "pipeline");
    assert_eq!(effects.notices[0].payload["roomId"], "p1");
    assert_eq!(
        view.members,
        [MemberView {
            user_id: user("alice"),
            user_name: "ALICE".into()
        }]
    );
}

#[test]
fn two_tabs_of_one_user_are_one_presence() {
    let mut r = roster();
    let pipeline = room("org-a", "p1");
    join(&mut r, &pipeline, 1, "alice", 10);
    join(&mut r, &pipeline, 2, "bob", 10);
    let (view, second_tab) = join(&mut r, &pipeline, 3, "bob", 20);
    assert!(second_tab.notices.is_empty(), "bob was already there");
    assert!(second_tab.publish.is_empty(), "this node already holds bob");
    assert_eq!(view.members.len(), 1, "the joiner is not listed: {view:?}");

    let first_gone = r.leave(&pipeline, ClientId(2), 30).unwrap();
    assert!(first_gone.notices.is_empty() && first_gone.publish.is_empty());
    let last_gone = r.leave(&pipeline, ClientId(3), 40).unwrap();
    assert_eq!(notices(&last_gone), [("user-left", vec![1], "bob".into())]);
    assert!(
        matches!(&last_gone.publish[..], [Message::Leave { user: u, .. }] if *u == user("bob"))
    );
    assert!(
        r.leave(&pipeline, ClientId(3), 50).is_none(),
        "already gone"
    );
}

#[test]
fn a_user_never_hears_their_own_join_or_typing() {
    let mut r = roster();
    let pipeline = room("org-a", "p1");
    join(&mut r, &pipeline, 1, "alice", 10);
    let (_, second_tab) = join(&mut r, &pipeline, 2, "alice", 20);
    assert!(second_tab.notices.is_empty());
    let typed = r
        .typing(&pipeline, ClientId(1), "notes", 30)
        .unwrap()
        .unwrap();
    assert!(typed.notices.is_empty(), "only alice is in the room");
    assert_eq!(typed.publish.len(), 1, "other nodes still hear it");
}

#[test]
fn typing_reaches_only_the_others_in_that_room() {
    let mut r = roster();
    let pipeline = room("org-a", "p1");
    join(&mut r, &pipeline, 1, "alice", 0);
    join(&mut r, &pipeline, 2, "bob", 0);
    join(&mut r, &room("org-a", "p2"), 3, "carol", 0);
    join(&mut r, &room("org-b", "p1"), 4, "dave", 0);
    let typed = r
        .typing(&pipeline, ClientId(1), "notes", 100)
        .unwrap()
        .unwrap();
    assert_eq!(notices(&typed), [("user-typing", vec![2], "alice".into())]);
    let payload = &typed.notices[0].payload;
    assert_eq!(payload["field"], "notes");
    assert_eq!(payload["expiresAt"], crate::protocol::format_millis(5100));
    assert!(matches!(
        r.typing(&pipeline, ClientId(3), "notes", 100),
        Err(NotInRoom)
    ));
}

#[test]
fn typing_is_throttled_per_user_and_field_and_lapses() {
    let mut r = roster();
    let pipeline = room("org-a", "p1");
    join(&mut r, &pipeline, 1, "alice", 0);
    join(&mut r, &pipeline, 2, "bob", 0);
    assert!(
        r.typing(&pipeline, ClientId(1), "notes", 1000)
            .unwrap()
            .is_some()
    );
    assert!(
        r.typing(&pipeline, ClientId(1), "notes", 1999)
            .unwrap()
            .is_none()
    );
    assert!(
        r.typing(&pipeline, ClientId(1), "title", 1999)
            .unwrap()
            .is_some()
    );
    assert!(
        r.typing(&pipeline, ClientId(2), "notes", 1999)
            .unwrap()
            .is_some()
    );
    assert!(
        r.typing(&pipeline, ClientId(1), "notes", 2000)
            .unwrap()
            .is_some()
    );

    let (view, _) = join(&mut r, &pipeline, 3, "carol", 6999);
    let typists: Vec<(&str, &str)> = view
        .typing
        .iter()
        .map(|t| (t.user_id.as_str(), &*t.field))
        .collect();
    assert_eq!(
        typists,
        [("alice", "notes")],
        "only what was typed at 2000 is fresh at 6999"
    );
    r.expire(7000);
    let (view, _) = join(&mut r, &pipeline, 4, "dave", 7000);
    assert!(view.typing.is_empty());
}

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
fn rooms_of_two_organisations_never_meet() {
    let mut r = roster();
    join(&mut r, &room("org-a", "shared-id"), 1, "alice", 0);
    let (view, effects) = join(&mut r, &room("org-b", "shared-id"), 2, "mallory", 0);
    assert!(view.members.is_empty() && effects.notices.is_empty());
    let typed = r
        .typing(&room("org-b", "shared-id"), ClientId(2), "notes", 10)
        .unwrap()
        .unwrap();
    assert!(typed.notices.is_empty());
    let remote = Message::Join {
        member: member(&room("org-b", "shared-id"), "eve"),
    };
    let effects = r.apply(&from("peer", 0, remote), 0);
    assert_eq!(notices(&effects), [("user-joined", vec![2], "eve".into())]);
}

mod isolation {
    //! Property: whatever sockets and other instances do, presence and typing
    //! about a user reach only sockets of that user's organisation, seated
    //! in that room, and never the user's own sockets.

    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    const ORGS: [&str; 2] = ["org-a", "org-b"];

    /// Socket `s` belongs to user `org-x/u{s % 3}` of org `s % 2`.
    fn owner(socket: u64) -> (&'static str, String) {
        let org = ORGS[(socket % 2) as usize];
        (org, format!("{org}.u{}", socket % 3))
    }

    #[derive(Clone, Debug)]
    enum Op {
        Join(u64, u8),
        Leave(u64, u8),
        Type(u64, u8, u8),
        Remote(u8, usize, u8, u8, RemoteOp),
        Expire,
    }

    #[derive(Clone, Debug)]
    enum RemoteOp {
        Join,
        Leave,
        Type,
        Bye,
    }

    fn op() -> impl Strategy<Value = Op> {
        let socket = 0u64..6;
        let id = 0u8..2;
        prop_oneof![
            (socket.clone(), id.clone()).prop_map(|(s, r)| Op::Join(s, r)),
            (socket.clone(), id.clone()).prop_map(|(s, r)| Op::Leave(s, r)),
            (socket, id.clone(), 0u8..2).prop_map(|(s, r, f)| Op::Type(s, r, f)),
            (
                0u8..2,
                0usize..2,
                id,
                0u8..3,
                prop_oneof![
                    Just(RemoteOp::Join),
                    Just(RemoteOp::Leave),
                    Just(RemoteOp::Type),
                    Just(RemoteOp::Bye)
                ]
            )
                .prop_map(|(p, o, r, u, op)| Op::Remote(p, o, r, u, op)),
            Just(Op::Expire),
        ]
    }

    proptest! {
        #[test]
        fn presence_never_crosses_organisations(ops in proptest::collection::vec(op(), 1..80)) {
            let mut r = roster();
            let mut seated: HashSet<(u64, String)> = HashSet::new();
            let mut now = 0;
            for op in ops {
                now += 400;
                let effects = match op {
                    Op::Join(s, id) => {
                        let (org, user) = owner(s);
                        seated.insert((s, id.to_string()));
                        join(&mut r, &room(org, &id.to_string()), s, &user, now).1
                    }
                    Op::Leave(s, id) => {
                        seated.remove(&(s, id.to_string()));
                        r.leave(&room(owner(s).0, &id.to_string()), ClientId(s), now)
                            .unwrap_or_default()
                    }
                    Op::Type(s, id, field) => {
                        let at = room(owner(s).0, &id.to_string());
                        match r.typing(&at, ClientId(s), &field.to_string(), now) {
                            Ok(effects) => effects.unwrap_or_default(),
                            Err(NotInRoom) => {
                                prop_assert!(!seated.contains(&(s, id.to_string())));
                                Effects::default()
                            }
                        }
                    }
                    Op::Remote(peer, org, id, u, op) => {
                        let (org, at) = (ORGS[org], room(ORGS[org], &id.to_string()));
                        let user = format!("{org}.u{u}");
                        let message = match op {
                            RemoteOp::Join => Message::Join { member: member(&at, &user) },
                            RemoteOp::Leave => Message::Leave { room: at, user: super::user(&user) },
                            RemoteOp::Type => Message::Typing {
                                room: at,
                                user: super::user(&user),
                                name: "N".into(),
                                field: "notes".into(),
                            },
                            RemoteOp::Bye => Message::Bye,
                        };
                        r.apply(&from(&format!("peer{peer}"), now, message), now)
                    }
                    Op::Expire => r.expire(now),
                };
                for notice in &effects.notices {
                    let about = notice.payload["userId"].as_str().unwrap();
                    let room_id = notice.payload["roomId"].as_str().unwrap().to_owned();
                    for socket in &notice.to {
                        let (org, user) = owner(*socket);
                        prop_assert!(about.starts_with(&format!("{org}.")), "{about} reached {org}");
                        prop_assert_ne!(about, user.as_str(), "an echo of one's own {}", notice.event);
                        prop_assert!(seated.contains(&(*socket, room_id.clone())), "not in room {room_id}");
                    }
                }
            }
        }
    }
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
