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
