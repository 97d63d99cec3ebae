//! Topic ids (KIP-516), the only thing that tells a topic deleted and
//! recreated under the same name from the one that was there before, once
//! the new log has grown past where live delivery stood (offsets alone show
//! nothing: see `consumer.rs`).
//!
//! rdkafka has no API for them; librdkafka's Admin `DescribeTopics` has
//! (`rd_kafka_DescribeTopics`, librdkafka ≥ 2.3). This module is the one
//! place that calls it through the raw bindings: a blocking look-up on the
//! given client's handle, with a queue of its own (so its answer cannot mix
//! with the consumer's events) and a bounded wait. Every object librdkafka
//! allocates for it is owned by a guard that frees it on every path; the
//! descriptions read from the result live as long as the result event, and
//! nothing borrowed from them outlives [`describe`].
//!
//! Callers run it off the async workers (`spawn_blocking`): it waits on a
//! broker round trip. Assignment records each topic's id; every watermark
//! round compares (`watermarks.rs`).
//!
//! No record twice, none of the new log missed, when an id changes
//! (`consumer.rs`, `Partitions::restart_recreated`): the last look-up that
//! still found the old id was sent when live delivery stood at `old_end`,
//! so everything below was read from the old log. From there to where live
//! delivery stands when the change is seen (`now`), the consumer crossed
//! from the old log into the new one at an offset nothing reports
//! (librdkafka's own metadata sees the id change and fetches on at its
//! position; see the FIXME in its `rd_kafka_topic_metadata_update`). So the
//! partition is sought to offset 0 and live delivery reset there; a record
//! read again in `[old_end, now)` is skipped when the payload handed on at
//! its offset is the same (it was this record, read from the new log
//! before the look-up), delivered when it differs (what was handed on
//! there came from the old log). What memory no longer holds of that range
//! counts as handed on: at worst missed, never twice (logged).

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int};
use std::fmt;
use std::ptr::NonNull;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};
use rdkafka::types::RDKafkaErrorCode;

use crate::domain::LogTag;

/// A topic's id: a UUID the controller gives the topic when it is created,
/// never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TopicId(u128);

impl TopicId {
    pub fn from_bits(most: i64, least: i64) -> Self {
        Self((u128::from(most as u64) << 64) | u128::from(least as u64))
    }

    /// The tag that cursors and event positions carry for the topic's log
    /// (see [`LogTag`]): the start of the base64url form Kafka's tools print.
    pub fn tag(&self) -> LogTag {
        LogTag::of_id(self.0.to_be_bytes())
    }
}

/// The UUID's usual text form (Kafka's tools print base64; the bits are the same).
impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0.to_be_bytes();
        write!(
            f,
            "{}-{}-{}-{}-{}",
            hex::encode(&b[..4]),
            hex::encode(&b[4..6]),
            hex::encode(&b[6..8]),
            hex::encode(&b[8..10]),
            hex::encode(&b[10..])
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    #[error("a topic name contains a NUL byte")]
    BadName,
    #[error("librdkafka could not allocate the request")]
    Alloc,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("describing topics failed: {0}")]
    Failed(RDKafkaErrorCode),
}

/// Per topic of `topics`, its id, or the error the cluster answered for it
/// (e.g. `UnknownTopicOrPartition` while a deleted topic is not recreated
/// yet). Blocking: one request, waited for at most `timeout`.
pub fn describe<C: ClientContext>(
    client: &Client<C>,
    topics: &[&str],
    timeout: Duration,
) -> Result<HashMap<String, Result<TopicId, RDKafkaErrorCode>>, DescribeError> {
    let names: Vec<CString> = topics
        .iter()
        .map(|t| CString::new(*t).map_err(|_| DescribeError::BadName))
        .collect::<Result<_, _>>()?;
    let event = request(client.native_ptr(), &names, timeout)?;
    let described = described_topics(&event)?;
    let mut out = HashMap::with_capacity(described.len());
    for &description in described {
        // SAFETY: every entry is a valid description owned by `event`,
        // which outlives this loop.
        let (name, answer) = unsafe { read_description(description) };
        out.insert(name, answer);
    }
    Ok(out)
}

/// Sends the DescribeTopics request for `names` on a queue of its own and
/// waits at most `timeout` for the answer: the result event.
fn request(
    rk: *mut rd::rd_kafka_t,
    names: &[CString],
    timeout: Duration,
) -> Result<Owned<rd::rd_kafka_event_t>, DescribeError> {
    let timeout_ms = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
    let mut pointers: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    // SAFETY: `pointers` holds `pointers.len()` valid NUL-terminated strings
    // (`names` outlives the call); librdkafka copies them and writes
    // nothing (the binding's `*mut` is the C header's `const char **`).
    let collection = Owned::new(
        unsafe {
            rd::rd_kafka_TopicCollection_of_topic_names(pointers.as_mut_ptr(), pointers.len())
        },
        rd::rd_kafka_TopicCollection_destroy,
    )?;
    // SAFETY: `rk` is the live handle the caller's client owns (borrowed
    // for this call).
    let queue = Owned::new(
        unsafe { rd::rd_kafka_queue_new(rk) },
        rd::rd_kafka_queue_destroy,
    )?;
    let options = admin_options(rk, timeout_ms)?;
    // SAFETY: all pointers are valid; librdkafka copies what it keeps of
    // `collection` and `options`, and holds its own reference to `queue`
    // until it has answered on it, so dropping them after is fine (also on
    // a timeout, with the request still in flight).
    unsafe {
        rd::rd_kafka_DescribeTopics(
            rk,
            collection.0.as_ptr(),
            options.0.as_ptr(),
            queue.0.as_ptr(),
        )
    };
    // SAFETY: `queue` is valid; the event returned is ours to destroy.
    let event = unsafe { rd::rd_kafka_queue_poll(queue.0.as_ptr(), timeout_ms) };
    Owned::new(event, rd::rd_kafka_event_destroy).map_err(|_| DescribeError::Timeout(timeout))
}

/// Options of a DescribeTopics request that times out after `timeout_ms`.
fn admin_options(
    rk: *mut rd::rd_kafka_t,
    timeout_ms: c_int,
) -> Result<Owned<rd::rd_kafka_AdminOptions_t>, DescribeError> {
    // SAFETY: `rk` is a live handle (see `request`); the op type is a
    // valid enum value.
    let options = Owned::new(
        unsafe {
            rd::rd_kafka_AdminOptions_new(
                rk,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
            )
        },
        rd::rd_kafka_AdminOptions_destroy,
    )?;
    let mut errstr = [0 as c_char; 256];
    // SAFETY: `options` is valid; `errstr` is writable for its length. A
    // timeout in range cannot fail; if it did, the default applies.
    unsafe {
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options.0.as_ptr(),
            timeout_ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        );
    }
    Ok(options)
}

/// The topic descriptions in the answer `event`, which they live as long
/// as; or the error the whole request failed with.
fn described_topics(
    event: &Owned<rd::rd_kafka_event_t>,
) -> Result<&[*const rd::rd_kafka_TopicDescription_t], DescribeError> {
    // SAFETY: `event` is a valid event.
    let code = unsafe { rd::rd_kafka_event_error(event.0.as_ptr()) };
    if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        return Err(DescribeError::Failed(code.into()));
    }
    // SAFETY: `event` is valid; NULL unless it is a DescribeTopics result.
    let result = unsafe { rd::rd_kafka_event_DescribeTopics_result(event.0.as_ptr()) };
    if result.is_null() {
        return Err(DescribeError::Failed(RDKafkaErrorCode::BadMessage));
    }
    let mut count = 0usize;
    // SAFETY: `result` is valid; the array it returns has `count` entries
    // and lives as long as `event`, which the returned slice borrows.
    let described = unsafe { rd::rd_kafka_DescribeTopics_result_topics(result, &mut count) };
    Ok(match described.is_null() {
        true => &[],
        // SAFETY: see above: `count` valid pointers.
        false => unsafe { std::slice::from_raw_parts(described, count) },
    })
}

/// A description's topic name and its id, or the error the cluster
/// answered for the topic; copied out of librdkafka's memory.
///
/// # Safety
///
/// `description` is a valid description, alive for the call.
unsafe fn read_description(
    description: *const rd::rd_kafka_TopicDescription_t,
) -> (String, Result<TopicId, RDKafkaErrorCode>) {
    // SAFETY: the name lives as long as the description, and is copied.
    let name = unsafe { CStr::from_ptr(rd::rd_kafka_TopicDescription_name(description)) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: the error, if any, lives as long as the description.
    let code = unsafe {
        let error = rd::rd_kafka_TopicDescription_error(description);
        match error.is_null() {
            true => rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR,
            false => rd::rd_kafka_error_code(error),
        }
    };
    let answer = match code {
        // SAFETY: the id lives as long as the description; its bits are
        // copied.
        rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => unsafe {
            let id = rd::rd_kafka_TopicDescription_topic_id(description);
            let id = TopicId::from_bits(
                rd::rd_kafka_Uuid_most_significant_bits(id),
                rd::rd_kafka_Uuid_least_significant_bits(id),
            );
            // All zeros: a broker too old to have topic ids (< 2.8).
            match id.0 {
                0 => Err(RDKafkaErrorCode::UnsupportedVersion),
                _ => Ok(id),
            }
        },
        code => Err(code.into()),
    };
    (name, answer)
}

/// An object librdkafka allocated, freed with its destructor when dropped.
struct Owned<T>(NonNull<T>, unsafe extern "C" fn(*mut T));

impl<T> Owned<T> {
    fn new(ptr: *mut T, destroy: unsafe extern "C" fn(*mut T)) -> Result<Self, DescribeError> {
        NonNull::new(ptr)
            .map(|p| Self(p, destroy))
            .ok_or(DescribeError::Alloc)
    }
}

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came non-null from the librdkafka call this
        // destructor belongs to, and is freed exactly once, here.
        unsafe { (self.1)(self.0.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_prints_as_a_uuid() {
        let id = TopicId::from_bits(0x0123_4567_89ab_cdef_u64 as i64, -1);
        assert_eq!(id.to_string(), "01234567-89ab-cdef-ffff-ffffffffffff");
        assert_ne!(id, TopicId::from_bits(0x0123_4567_89ab_cdef, 0));
        // Kafka prints this id as "ASNFZ4mrze___________w".
        assert_eq!(id.tag().as_str(), "ASNFZ4mr");
    }
}
