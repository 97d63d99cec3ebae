//! The seed's error object, and the one place internal failures become what a
//! client is told. Messages help the client fix its request; they never carry
//! internals (addresses, stack traces, other tenants' ids).

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::now_rfc3339;

/// The seed's error codes, spelled as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    InvalidRequest,
    ResourceNotFound,
    RateLimited,
    ServerError,
}

/// An error for one client request.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<Value>,
    /// For `RATE_LIMITED`: milliseconds before trying again (the seed's
    /// `error.retryAfter`).
    pub retry_after_ms: Option<u64>,
}

/// `{ code, message, details?, timestamp }`, as the seed's error format,
/// with `retryAfter` (ms) on rate limits, where the seed's client reads it.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorPayload<'a> {
    code: ErrorCode,
    /// What went wrong, for a person; never internals.
    message: &'a str,
    /// Machine-readable specifics, e.g. `reason`, or the allowed values.
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a Value>,
    #[schemars(extend("format" = "date-time"))]
    timestamp: String,
    /// On `RATE_LIMITED`: milliseconds before trying again.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

impl ClientError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
            retry_after_ms: None,
        }
    }

    /// `RATE_LIMITED`, to be retried after `retry_after_ms`.
    pub fn rate_limited(message: impl Into<String>, retry_after_ms: u64) -> Self {
        Self {
            retry_after_ms: Some(retry_after_ms),
            ..Self::new(ErrorCode::RateLimited, message)
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    pub fn payload(&self) -> ErrorPayload<'_> {
        ErrorPayload {
            code: self.code,
            message: &self.message,
            details: self.details.as_ref(),
            timestamp: now_rfc3339(),
            retry_after: self.retry_after_ms,
        }
    }
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_in_the_seed_shape() {
        let err = ClientError::new(ErrorCode::ResourceNotFound, "no such resource");
        let json = serde_json::to_value(err.payload()).unwrap();
        assert_eq!(json["code"], "RESOURCE_NOT_FOUND");
        assert_eq!(json["message"], "no such resource");
        assert!(json.get("details").is_none());
        assert!(json["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(json.get("retryAfter").is_none());
        let limited = serde_json::to_value(ClientError::rate_limited("slow down", 40).payload());
        assert_eq!(limited.unwrap()["retryAfter"], 40);
    }
}
