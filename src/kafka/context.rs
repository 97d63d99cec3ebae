//! The callbacks of every Kafka client the bridge makes
//! ([`BridgeContext`]): librdkafka's errors and logs go to `tracing`, and
//! the errors that mean the bridge cannot get in at all are kept
//! ([`ConnectionTrouble`]) for `/readyz`, counted
//! (`crm_bridge_kafka_client_errors_total`), and logged once when they
//! start and once when they end.
//!
//! Getting in fails two ways that retrying cannot mend: Kafka refuses the
//! credentials (SASL), or the TLS handshake fails (a certificate not
//! trusted either way, a name that does not match). librdkafka retries by
//! itself all the same (`reconnect.backoff.ms`, growing to
//! `reconnect.backoff.max.ms`, 10 s), so the bridge stays up, not ready,
//! and gets in as soon as the credentials or certificates are fixed on
//! either side: no crash loop, no restart needed for a fix on Kafka's side.
//! librdkafka reports every failed attempt twice, as an error and as a log
//! line (facility `FAIL`): here the error is logged when the trouble
//! starts or changes, each repeat only counted, and the log line demoted
//! to debug. Neither carries a secret: librdkafka names the mechanism and
//! the broker, never a password or key.
//!
//! The trouble ends when Kafka answers again (a watermark or assignment
//! look-up, see `readiness.rs`): every client shares the credentials and
//! brokers, so one that gets in means the others can.
//!
//! Kafka may also let the bridge in and deny it a resource (an ACL
//! missing: see docs/configuration.md, "The ACLs the bridge needs"). Each client's
//! context names the client, so a denial says which part of the bridge was
//! denied what; each distinct denial is logged once, counted, and named on
//! `/readyz` while the part it stops is not ready (a denial not seen again
//! for [`DENIAL_MEMORY`] is forgotten).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::ProducerContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::metrics::Metrics;

/// How long a denial not seen again is remembered.
pub const DENIAL_MEMORY: Duration = Duration::from_secs(300);

/// Distinct denials remembered at most (the oldest go first).
const DENIALS_KEPT: usize = 16;

/// Shared by every client of one bridge (cheap to clone), each with its
/// own name ([`BridgeContext::for_client`]).
#[derive(Clone)]
pub struct BridgeContext {
    trouble: Arc<ConnectionTrouble>,
    metrics: Arc<Metrics>,
    /// Which of the bridge's clients this is, for the denials it reports.
    client: Arc<str>,
}

impl BridgeContext {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            trouble: Arc::default(),
            metrics,
            client: "a Kafka client".into(),
        }
    }

    /// The same context for the client `client` (e.g. "the live consumer
    /// (group crm-bridge-a)": librdkafka's words for a denied group do not
    /// name it).
    pub fn for_client(&self, client: impl Into<Arc<str>>) -> Self {
        Self {
            client: client.into(),
            ..self.clone()
        }
    }

    /// Which client this is.
    pub fn client(&self) -> &str {
        &self.client
    }

    pub fn trouble(&self) -> &Arc<ConnectionTrouble> {
        &self.trouble
    }

    /// The bridge's metrics, which the clients' errors are counted in.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

/// What an error from librdkafka says about getting in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Kafka refused the credentials.
    Authentication,
    /// The TLS handshake failed.
    Tls,
}

impl Refusal {
    pub fn of(code: RDKafkaErrorCode) -> Option<Self> {
        match code {
            RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed => {
                Some(Self::Authentication)
            }
            RDKafkaErrorCode::SSL => Some(Self::Tls),
            _ => None,
        }
    }

    /// The metric's label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Authentication => "authentication",
            Self::Tls => "tls",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Authentication => "Kafka authentication failed (check the SASL credentials)",
            Self::Tls => "Kafka TLS handshake failed (check the CA and certificates)",
        }
    }
}

/// The label counted for an error that is no refusal.
fn label(code: Option<RDKafkaErrorCode>) -> &'static str {
    match code {
        Some(code) => match Refusal::of(code) {
            Some(refusal) => refusal.label(),
            None if is_authorization(code) => "authorization",
            None => "other",
        },
        None => "other",
    }
}

pub fn is_authorization(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::GroupAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed
            | RDKafkaErrorCode::TransactionalIdAuthorizationFailed
    )
}

/// The refusal the bridge's clients are getting, if any, and the denials
/// they got.
#[derive(Default)]
pub struct ConnectionTrouble {
    current: Mutex<Option<Trouble>>,
    /// What was denied, by its description, and when it last was.
    denials: Mutex<BTreeMap<String, Instant>>,
}

struct Trouble {
    refusal: Refusal,
    /// librdkafka's words for the last attempt (broker, mechanism, step).
    reason: String,
    since: Instant,
    /// When an attempt last failed.
    last: Instant,
    attempts: u64,
}

impl ConnectionTrouble {
    /// An attempt was refused; true when this starts (or changes) the
    /// trouble, which is then worth a log line.
    pub fn refused(&self, refusal: Refusal, reason: &str) -> bool {
        let now = Instant::now();
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match current.as_mut() {
            Some(trouble) if trouble.refusal == refusal => {
                trouble.reason = reason.to_owned();
                trouble.last = now;
                trouble.attempts += 1;
                false
            }
            _ => {
                *current = Some(Trouble {
                    refusal,
                    reason: reason.to_owned(),
                    since: now,
                    last: now,
                    attempts: 1,
                });
                true
            }
        }
    }

    /// True from a refused attempt until Kafka answers after it.
    pub fn is_refused(&self) -> bool {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Kafka denied `denial` (which client, what, librdkafka's words):
    /// logged the first time.
    pub fn denied(&self, denial: String) {
        let now = Instant::now();
        let mut denials = self.denials.lock().unwrap_or_else(|e| e.into_inner());
        denials.retain(|_, last| now.duration_since(*last) < DENIAL_MEMORY);
        if denials.insert(denial.clone(), now).is_none() {
            tracing::error!(
                "Kafka denies the bridge's user a resource (an ACL is missing; \
                 docs/configuration.md lists those the bridge needs): {denial}"
            );
        }
        while denials.len() > DENIALS_KEPT {
            let oldest = denials
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(d, _)| d.clone());
            denials.remove(&oldest.expect("more than none"));
        }
    }

    /// The denials remembered, for a reason on `/readyz`: empty if none.
    pub fn denials(&self) -> String {
        let now = Instant::now();
        let denials = self.denials.lock().unwrap_or_else(|e| e.into_inner());
        let current: Vec<&str> = denials
            .iter()
            .filter(|(_, last)| now.duration_since(**last) < DENIAL_MEMORY)
            .map(|(denial, _)| denial.as_str())
            .collect();
        match current.is_empty() {
            true => String::new(),
            false => format!("; Kafka denied {}", current.join("; ")),
        }
    }

    /// Logs `what` failed with `error`, a failure Kafka's refusal or a
    /// denial may cause: at warn, or at debug while Kafka refuses the
    /// bridge or has denied it something (that was logged once already).
    pub fn warn(&self, what: &str, error: &dyn std::fmt::Display) {
        let denied = !self
            .denials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if self.is_refused() || denied {
            tracing::debug!(error = %error, "{what}");
        } else {
            tracing::warn!(error = %error, "{what}");
        }
    }

    /// Why the bridge cannot get in, unless Kafka answered (at
    /// `last_answer`) after the last refused attempt.
    pub fn current(&self, last_answer: Option<Instant>) -> Option<String> {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let trouble = current.as_ref()?;
        if last_answer.is_some_and(|answer| answer > trouble.last) {
            return None;
        }
        Some(format!(
            "{} for {}s, failed attempts: {}: {}",
            trouble.refusal.describe(),
            trouble.since.elapsed().as_secs(),
            trouble.attempts,
            trouble.reason
        ))
    }

    /// Kafka answered at `answer`: a trouble last seen before it is over
    /// (logged once).
    pub fn answered(&self, answer: Instant) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let Some(trouble) = current.take_if(|trouble| trouble.last < answer) else {
            return;
        };
        tracing::info!(
            refusal = trouble.refusal.label(),
            after_seconds = trouble.since.elapsed().as_secs(),
            attempts = trouble.attempts,
            "Kafka lets the bridge in again"
        );
    }
}

impl ClientContext for BridgeContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        // A failed connection, which `error` reports as well.
        if fac == "FAIL" {
            tracing::debug!(target: "librdkafka", fac, "{log_message}");
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", fac, "{log_message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", fac, "{log_message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        // Reaching a partition's end ends every replay read from Kafka
        // (`enable.partition.eof`); the reader acts on it, it is no error.
        if code == Some(RDKafkaErrorCode::PartitionEOF) {
            return;
        }
        self.metrics.kafka_client_errors.inc(label(code));
        match code.and_then(Refusal::of) {
            Some(refusal) => {
                if self.trouble.refused(refusal, reason) {
                    tracing::error!(
                        target: "librdkafka",
                        refusal = refusal.label(),
                        "{}; retrying until Kafka lets the bridge in: {reason}",
                        refusal.describe()
                    );
                }
            }
            None if code.is_some_and(is_authorization) => {
                self.trouble.denied(format!("{}: {reason}", self.client));
            }
            // No broker connection left: while Kafka refuses the bridge,
            // that is why (logged once above).
            None if code == Some(RDKafkaErrorCode::AllBrokersDown) && self.trouble.is_refused() => {
                tracing::debug!(target: "librdkafka", "librdkafka: {error}: {reason}");
            }
            None => tracing::error!(target: "librdkafka", "librdkafka: {error}: {reason}"),
        }
    }
}

impl ConsumerContext for BridgeContext {}

/// Called for the presence producer's records (the dead letters' producer
/// waits on each delivery's future instead): a record Kafka did not take
/// is counted, and a denial remembered.
impl ProducerContext for BridgeContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        let Err((error, message)) = result else {
            return;
        };
        let code = error.rdkafka_error_code();
        self.metrics.kafka_client_errors.inc(label(code));
        if code.is_some_and(is_authorization) {
            use rdkafka::Message as _;
            let topic = message.topic();
            self.trouble.denied(format!(
                "{}: writing to topic {topic}: {error}",
                self.client
            ));
        } else {
            self.trouble.warn("a record was not delivered", error);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_refusal_is_current_until_kafka_answers_after_it() {
        let trouble = ConnectionTrouble::default();
        assert_eq!(trouble.current(None), None);
        let before = Instant::now();
        assert!(trouble.refused(Refusal::Authentication, "SASL authentication error"));
        assert!(!trouble.refused(Refusal::Authentication, "SASL authentication error"));
        let why = trouble.current(Some(before)).expect("an answer before it");
        assert!(why.starts_with("Kafka authentication failed"), "{why}");
        assert!(
            why.contains("failed attempts: 2: SASL authentication error"),
            "{why}"
        );

        trouble.answered(before);
        assert!(
            trouble.current(None).is_some(),
            "an answer before it ends nothing"
        );
        let after = Instant::now() + Duration::from_millis(1);
        assert_eq!(trouble.current(Some(after)), None);
        trouble.answered(after);
        assert_eq!(trouble.current(None), None);
    }

    #[test]
    fn a_different_refusal_is_a_new_trouble() {
        let trouble = ConnectionTrouble::default();
        assert!(trouble.refused(Refusal::Tls, "SSL handshake failed"));
        assert!(trouble.refused(Refusal::Authentication, "SASL authentication error"));
        let why = trouble.current(None).unwrap();
        assert!(why.contains("failed attempts: 1:"), "{why}");
    }

    #[test]
    fn each_denial_is_remembered_once_and_named() {
        let trouble = ConnectionTrouble::default();
        assert_eq!(trouble.denials(), "");
        trouble.denied("the presence producer: writing to topic p: denied".into());
        trouble.denied("the presence producer: writing to topic p: denied".into());
        trouble.denied("the live consumer: group g: denied".into());
        assert_eq!(
            trouble.denials(),
            "; Kafka denied the live consumer: group g: denied; \
             the presence producer: writing to topic p: denied"
        );
        for n in 0..2 * DENIALS_KEPT {
            trouble.denied(format!("denial {n}"));
        }
        let kept = trouble.denials();
        assert_eq!(kept.matches("; ").count(), DENIALS_KEPT, "{kept}");
        assert!(kept.contains(&format!("denial {}", 2 * DENIALS_KEPT - 1)));
    }

    #[test]
    fn errors_are_labelled_by_what_they_say_about_getting_in() {
        assert_eq!(
            label(Some(RDKafkaErrorCode::Authentication)),
            "authentication"
        );
        assert_eq!(
            label(Some(RDKafkaErrorCode::SaslAuthenticationFailed)),
            "authentication"
        );
        assert_eq!(label(Some(RDKafkaErrorCode::SSL)), "tls");
        assert_eq!(
            label(Some(RDKafkaErrorCode::TopicAuthorizationFailed)),
            "authorization"
        );
        assert_eq!(label(Some(RDKafkaErrorCode::AllBrokersDown)), "other");
        assert_eq!(label(None), "other");
    }
}
