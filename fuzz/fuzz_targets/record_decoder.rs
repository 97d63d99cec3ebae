//! Any bytes as a record value of any CRM topic, through the decoder with the
//! bundled registry: no panic; every failure has a reason label and is not
//! retried; anything decoded is a well-formed event of a named organisation.
#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crm_bridge::decode::{Decoder, LocalRegistry, SchemaRegistry};
use crm_bridge::domain::{Position, TopicKind};
use libfuzzer_sys::fuzz_target;

fn decoder() -> &'static Decoder {
    static DECODER: OnceLock<Decoder> = OnceLock::new();
    DECODER.get_or_init(|| {
        let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let registry = LocalRegistry::load(&schemas).expect("the bundled registry loads");
        Decoder::new(Arc::new(SchemaRegistry::Local(registry)))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, value)) = data.split_first() else {
        return;
    };
    let topic = TopicKind::ALL[usize::from(selector) % TopicKind::ALL.len()];
    let position = Position {
        topic,
        partition: 0,
        offset: 7,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    match runtime.block_on(decoder().decode(position, Some(value))) {
        Ok(event) => {
            assert!(!event.org.as_str().is_empty());
            assert_eq!(event.position, position);
        }
        Err(error) => {
            assert!(!error.reason().is_empty());
            assert!(!error.is_transient());
        }
    }
});
