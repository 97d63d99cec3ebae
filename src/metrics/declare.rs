//! `declare_metrics!`: from one line per metric, the [`Metrics`] struct
//! (each field documented with its help), [`Metrics::catalogue`], and the
//! `/metrics` and `/stats` renderings that walk it.
//!
//! [`Metrics`]: super::Metrics
//! [`Metrics::catalogue`]: super::Metrics::catalogue

/// `field: Type["label", …] => "name", "help";` per metric, where `Type`
/// is a [`Metric`](super::Metric), the labels (as many as the type takes,
/// checked at compile time) are optional, and `name` follows
/// `crm_bridge_`.
macro_rules! declare_metrics {
    ($(
        $field:ident: $ty:ident $([$($label:literal),+])? => $name:literal, $help:literal;
    )*) => {
        #[derive(Default)]
        pub struct Metrics {
            $(
                #[doc = $help]
                pub $field: $ty,
            )*
        }

        /// Each field's place in `CATALOGUE`.
        #[allow(non_camel_case_types)]
        enum Position {
            $($field,)*
        }

        const CATALOGUE: &[Family] = &[$(
            Family {
                field: stringify!($field),
                name: concat!("crm_bridge_", $name),
                kind: <$ty as Metric>::KIND,
                labels: &[$($($label),+)?],
                help: $help,
            },
        )*];

        $(
            const _: () = assert!(
                CATALOGUE[Position::$field as usize].labels.len() == <$ty as Metric>::LABELS,
                concat!(stringify!($field), ": as many labels as its type takes"),
            );
        )*

        impl Metrics {
            /// Every metric, in declaration order.
            pub fn catalogue() -> &'static [Family] {
                CATALOGUE
            }

            /// Every metric in Prometheus text: `# HELP`, `# TYPE`, samples.
            pub fn render(&self, out: &mut Exposition) {
                $(
                    let family = &CATALOGUE[Position::$field as usize];
                    out.family(family.name, family.kind, family.help);
                    self.$field.samples(family, out);
                )*
            }

            /// Every metric as `/stats` shows it, by [`Family::stats_key`].
            pub fn snapshot(&self) -> serde_json::Value {
                let mut stats = serde_json::Map::new();
                $(
                    let family = &CATALOGUE[Position::$field as usize];
                    stats.insert(family.stats_key(), self.$field.stats(family));
                )*
                serde_json::Value::Object(stats)
            }
        }
    };
}

pub(super) use declare_metrics;
