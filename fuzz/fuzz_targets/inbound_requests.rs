//! Any bytes a client could send as a request's JSON, through every inbound
//! parser: no panic; refusals carry a seed code; anything accepted is inside
//! the caller's organisation.
#![no_main]

use crm_bridge::domain::{OrgId, UserId};
use crm_bridge::protocol::{
    Caller, ErrorCode, parse_room, parse_subscribe, parse_typing, parse_unsubscribe,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn refused_with_a_seed_code<T>(result: &Result<T, crm_bridge::protocol::ClientError>) {
    if let Err(error) = result {
        assert!(matches!(
            error.code,
            ErrorCode::InvalidRequest | ErrorCode::ResourceNotFound | ErrorCode::Forbidden
        ));
    }
}

fuzz_target!(|data: &[u8]| {
    // What socketioxide hands a handler: a value, or nothing when the
    // argument is not JSON it can read.
    let raw: Option<Value> = serde_json::from_slice(data).ok();
    let org = OrgId::new("org-1").unwrap();
    let user = UserId::new("user_1").unwrap();
    let caller = Caller {
        org: &org,
        user: &user,
    };

    let subscribed = parse_subscribe(caller, raw.as_ref());
    refused_with_a_seed_code(&subscribed);
    if let Ok(request) = &subscribed {
        assert_eq!(request.key.org, org);
    }
    let unsubscribed = parse_unsubscribe(caller, raw.as_ref());
    refused_with_a_seed_code(&unsubscribed);
    if let Ok(key) = &unsubscribed {
        assert_eq!(key.org, org);
    }
    let room = parse_room(caller, raw.as_ref());
    refused_with_a_seed_code(&room);
    if let Ok(room) = &room {
        assert_eq!(room.org, org);
    }
    let typing = parse_typing(caller, raw.as_ref());
    refused_with_a_seed_code(&typing);
    if let Ok((room, _)) = &typing {
        assert_eq!(room.org, org);
    }
});
