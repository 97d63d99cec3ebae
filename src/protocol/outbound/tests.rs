use serde_json::{Value, json};

use super::*;
use crate::access::{PermissionsConfig, Policy, RoleConfig, RuleConfig};
use crate::domain::{
    ContactEvent, DealEvent, EmailEvent, NotificationEvent, OrgId, Position, TopicKind, UserId,
};

const T: i64 = 1_736_510_400_000;
const TS: &str = "2025-01-10T12:00:00.000Z";

fn event(body: EventBody) -> CrmEvent {
    CrmEvent {
        org: OrgId::new("org-1").unwrap(),
        position: Position {
            topic: TopicKind::Deals,
            partition: 3,
            offset: 42,
        },
        body,
    }
}

/// The seed's fields, after checking the position every payload carries.
fn rendered(body: EventBody) -> (&'static str, Value) {
    let out = render(&event(body), Delivery::Live, None, Hidden::NOTHING);
    let mut payload: Value = serde_json::from_str(out.payload.get()).unwrap();
    assert_eq!(payload["position"], "d.3.42");
    assert!(payload.get("replayed").is_none());
    payload.as_object_mut().unwrap().remove("position");
    (out.name, payload)
}

#[test]
fn replayed_events_say_so() {
    let out = render(
        &event(contact(Action::Note)),
        Delivery::Replayed,
        None,
        Hidden::NOTHING,
    );
    let payload: Value = serde_json::from_str(out.payload.get()).unwrap();
    assert_eq!(
        (payload["replayed"].clone(), payload["position"].clone()),
        (json!(true), json!("d.3.42"))
    );
}

#[test]
fn a_known_log_is_a_trailing_part_of_the_position() {
    let log = LogTag::parse("AbCd-_12");
    let out = render(
        &event(contact(Action::Note)),
        Delivery::Live,
        log,
        Hidden::NOTHING,
    );
    let payload: Value = serde_json::from_str(out.payload.get()).unwrap();
    let position = payload["position"].as_str().unwrap();
    assert_eq!(position, "d.3.42.AbCd-_12");
    // What docs/client-api.md tells a client without the module: the first three parts.
    let parts: Vec<&str> = position.split('.').take(3).collect();
    assert_eq!(parts, ["d", "3", "42"]);
}

fn contact(action: Action) -> EventBody {
    let mut changes = Map::new();
    changes.insert("email".into(), json!("jane@example.com"));
    changes.insert("score".into(), json!(42));
    EventBody::Contact(ContactEvent {
        contact_id: "contact_123".into(),
        action,
        actor_user_id: "user_1".into(),
        occurred_at_ms: T,
        changes,
    })
}

#[test]
fn contact_update_is_a_resource_update_with_the_seed_fields() {
    assert_eq!(
        rendered(contact(Action::Update)),
        (
            "resource-update",
            json!({
                "resource": "contact", "id": "contact_123", "action": "update",
                "data": {"email": "jane@example.com", "score": 42},
                "timestamp": TS, "userId": "user_1"
            })
        )
    );
}

#[test]
fn delete_is_a_resource_delete() {
    assert_eq!(
        rendered(contact(Action::Delete)),
        (
            "resource-delete",
            json!({"resource": "contact", "id": "contact_123", "timestamp": TS, "userId": "user_1"})
        )
    );
}

#[test]
fn stage_change_is_a_pipeline_update() {
    let body = EventBody::Deal(DealEvent {
        deal_id: "deal_789".into(),
        pipeline_id: "pipeline_456".into(),
        action: Action::StageChange,
        actor_user_id: "user_123".into(),
        occurred_at_ms: T,
        previous_stage: Some("negotiation".into()),
        new_stage: Some("closed-won".into()),
        changes: Map::new(),
    });
    assert_eq!(
        rendered(body),
        (
            "pipeline-update",
            json!({
                "pipelineId": "pipeline_456", "dealId": "deal_789",
                "previousStage": "negotiation", "newStage": "closed-won",
                "userId": "user_123", "timestamp": TS
            })
        )
    );
}

#[test]
fn email_and_notification_match_the_seed() {
    let email = EventBody::Email(EmailEvent {
        email_id: "email_789".into(),
        thread_id: "thread_1".into(),
        contact_id: Some("contact_123".into()),
        action: Action::Reply,
        subject: "Re: Follow up".into(),
        from: "client@example.com".into(),
        occurred_at_ms: T,
    });
    assert_eq!(
        rendered(email),
        (
            "email-received",
            json!({
                "emailId": "email_789", "contactId": "contact_123", "subject": "Re: Follow up",
                "from": "client@example.com", "timestamp": TS, "threadId": "thread_1", "action": "reply"
            })
        )
    );
    let notification = EventBody::Notification(NotificationEvent {
        notification_id: "notif-123".into(),
        target_user: UserId::new("user_1").unwrap(),
        kind: "mention".into(),
        title: "You were mentioned".into(),
        message: "John mentioned you in a comment".into(),
        link: Some("/deals/deal_789".into()),
        occurred_at_ms: T,
    });
    assert_eq!(
        rendered(notification),
        (
            "notification",
            json!({
                "id": "notif-123", "type": "mention", "title": "You were mentioned",
                "message": "John mentioned you in a comment", "link": "/deals/deal_789", "timestamp": TS
            })
        )
    );
}

/// A policy whose `support` role hides a deal's `value` and an email's
/// subject: what its `hidden` gives for a `support` viewer.
fn support_policy() -> Policy {
    let hide = |fields: &[&str]| RuleConfig {
        hide: fields.iter().map(|f| f.to_string()).collect(),
        ..RuleConfig::default()
    };
    let role = RoleConfig {
        deal: Some(hide(&["changes.value"])),
        email_thread: Some(hide(&["subject"])),
        contact: None,
    };
    Policy::new(&PermissionsConfig {
        enabled: true,
        topic: Some("crm.access".into()),
        roles: [("support".to_string(), role)].into(),
        ..PermissionsConfig::default()
    })
    .unwrap()
}

#[test]
fn a_hidden_field_is_absent_not_null() {
    let policy = support_policy();
    let mut changes = Map::new();
    changes.insert("value".into(), json!(50_000));
    changes.insert("name".into(), json!("Renewal"));
    let deal = EventBody::Deal(DealEvent {
        deal_id: "d1".into(),
        pipeline_id: "p1".into(),
        action: Action::Update,
        actor_user_id: "u1".into(),
        occurred_at_ms: T,
        previous_stage: None,
        new_stage: None,
        changes,
    });
    let out = render(
        &event(deal),
        Delivery::Live,
        None,
        policy.hidden(ResourceKind::Deal, 1),
    );
    let payload: Value = serde_json::from_str(out.payload.get()).unwrap();
    assert_eq!(payload["data"], json!({ "name": "Renewal" }));

    let email = EventBody::Email(EmailEvent {
        email_id: "e1".into(),
        thread_id: "t1".into(),
        contact_id: None,
        action: Action::NewEmail,
        subject: "Pricing".into(),
        from: "a@example.com".into(),
        occurred_at_ms: T,
    });
    let hidden = policy.hidden(ResourceKind::EmailThread, 1);
    let out = render(&event(email.clone()), Delivery::Live, None, hidden);
    let payload: Value = serde_json::from_str(out.payload.get()).unwrap();
    assert!(payload.get("subject").is_none(), "{payload}");
    assert_eq!(payload["from"], "a@example.com");
    let shown = render(&event(email), Delivery::Live, None, Hidden::NOTHING);
    assert!(shown.payload.get().contains("\"subject\":\"Pricing\""));
}
