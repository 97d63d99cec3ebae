use serde_json::json;

use super::*;

fn org() -> OrgId {
    OrgId::new("org-1").unwrap()
}

fn user() -> UserId {
    UserId::new("user_1").unwrap()
}

fn caller<'a>(org: &'a OrgId, user: &'a UserId) -> Caller<'a> {
    Caller { org, user }
}

fn subscribe(raw: Value) -> Result<SubscriptionRequest, ClientError> {
    parse_subscribe(caller(&org(), &user()), Some(&raw))
}

fn code(raw: Value) -> ErrorCode {
    subscribe(raw).unwrap_err().code
}

#[test]
fn parses_the_seed_examples() {
    let by_id = subscribe(
        json!({"resource": "contact", "id": "contact_123", "events": ["update", "delete"]}),
    )
    .unwrap();
    assert_eq!(
        by_id.key.scope,
        Scope::Resource(ResourceKind::Contact, Selector::Id("contact_123".into()))
    );
    assert!(by_id.actions.contains(Action::Delete) && !by_id.actions.contains(Action::Note));

    let org_wide = subscribe(json!({"resource": "contact", "filter": {"organizationId": "org-1"}, "events": ["create", "update"]})).unwrap();
    assert_eq!(
        org_wide.key.scope,
        Scope::Resource(ResourceKind::Contact, Selector::Organization)
    );

    let pipeline = subscribe(json!({"resource": "deal", "filter": {"pipelineId": "pipeline_123"}, "events": ["create", "stage-change"]})).unwrap();
    assert_eq!(
        pipeline.key.scope,
        Scope::Resource(
            ResourceKind::Deal,
            Selector::Field(FilterField::PipelineId, "pipeline_123".into())
        )
    );

    let thread = subscribe(json!({"resource": "email-thread", "id": "thread_123", "events": ["new-email", "reply", "forward"]})).unwrap();
    assert_eq!(thread.actions, ResourceKind::EmailThread.all_actions());
}

#[test]
fn events_default_to_all_of_the_resource() {
    let req = subscribe(json!({"resource": "deal", "id": "d"})).unwrap();
    assert_eq!(req.actions, ResourceKind::Deal.all_actions());
}

#[test]
fn keys_are_always_in_the_callers_organisation() {
    let req = subscribe(
        json!({"resource": "deal", "filter": {"organizationId": "org-1", "pipelineId": "p"}}),
    )
    .unwrap();
    assert_eq!(req.key.org, org());
    assert_eq!(
        code(json!({"resource": "deal", "filter": {"organizationId": "org-2"}})),
        ErrorCode::Forbidden
    );
}

#[test]
fn refuses_malformed_requests_with_the_right_code() {
    assert_eq!(
        code(json!({"resource": "invoice", "id": "x"})),
        ErrorCode::ResourceNotFound
    );
    for bad in [
        json!(null),
        json!("contact"),
        json!([]),
        json!({"id": "x"}),
        json!({"resource": 7, "id": "x"}),
        json!({"resource": "contact"}),
        json!({"resource": "contact", "id": ""}),
        json!({"resource": "contact", "id": 12}),
        json!({"resource": "contact", "id": "x".repeat(300)}),
        json!({"resource": "contact", "id": "x", "filter": {"organizationId": "org-1"}}),
        json!({"resource": "contact", "filter": {}}),
        json!({"resource": "contact", "filter": "org-1"}),
        json!({"resource": "contact", "filter": {"pipelineId": "p"}}),
        json!({"resource": "deal", "filter": {"pipelineId": "p", "organizationId": "org-1", "x": "y"}}),
        json!({"resource": "contact", "id": "x", "events": []}),
        json!({"resource": "contact", "id": "x", "events": "update"}),
        json!({"resource": "contact", "id": "x", "events": ["stage-change"]}),
        json!({"resource": "contact", "id": "x", "events": [1]}),
        json!({"resource": "contact", "id": "x", "extra": true}),
    ] {
        assert_eq!(
            subscribe(bad.clone()).unwrap_err().code,
            ErrorCode::InvalidRequest,
            "{bad}"
        );
    }
    assert_eq!(
        parse_subscribe(caller(&org(), &user()), None)
            .unwrap_err()
            .code,
        ErrorCode::InvalidRequest
    );
}

#[test]
fn unsubscribe_names_the_same_key_as_subscribe() {
    let sub =
        subscribe(json!({"resource": "deal", "filter": {"pipelineId": "p"}, "events": ["create"]}))
            .unwrap();
    let unsub = parse_unsubscribe(
        caller(&org(), &user()),
        Some(&json!({"resource": "deal", "filter": {"pipelineId": "p"}})),
    )
    .unwrap();
    assert_eq!(sub.key, unsub);
}

#[test]
fn describe_echoes_what_the_client_sent() {
    let req =
        subscribe(json!({"resource": "deal", "filter": {"pipelineId": "p"}, "events": ["create"]}))
            .unwrap();
    assert_eq!(
        req.describe(),
        json!({"resource": "deal", "filter": {"pipelineId": "p"}, "events": ["create"]})
    );
}

#[test]
fn since_is_a_cursor_and_notifications_resume_the_callers_inbox() {
    let req = subscribe(json!({"resource": "deal", "id": "d", "since": "1:d0.5,d1.7"})).unwrap();
    let since = req.since.unwrap();
    assert_eq!(since.get(crate::domain::TopicKind::Deals, 1), Some(7));
    assert_eq!(
        code(json!({"resource": "deal", "id": "d", "since": "yesterday"})),
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        code(json!({"resource": "deal", "id": "d", "since": 5})),
        ErrorCode::InvalidRequest
    );

    let inbox = subscribe(json!({"resource": "notification", "since": "1:n0.3"})).unwrap();
    assert_eq!(inbox.key.scope, Scope::Inbox(user()));
    assert_eq!(inbox.key.org, org());
    assert_eq!(
        code(json!({"resource": "notification", "id": "someone_else"})),
        ErrorCode::InvalidRequest
    );
}
