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

mod cluster;
mod isolation;

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
