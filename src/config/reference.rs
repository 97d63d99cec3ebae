//! The configuration reference: every key of [`Config`] after its doc
//! comment, set to its default, as commented TOML (`crm-bridge config
//! --print-defaults`, checked in as `docs/bridge.example.toml`). A key
//! without a default is commented out, set to its example
//! (`#[schemars(example = …)]`); an array of tables (`[[auth.api_keys]]`)
//! is commented out whole.
//!
//! Why schemars: its derive reads what a reference needs from what already
//! defines the configuration (doc comments, serde's container defaults
//! serialised from `Default`, renames), so nothing is restated and a new
//! key is documented where it is declared. Crates that collect doc comments
//! only (`documented`, `struct-field-docs`) know neither defaults nor
//! nesting. Keys come in alphabetical order: schemars keeps declaration
//! order only with serde_json's `preserve_order`, which would turn every
//! JSON map in the crate (the hot path's too) into an `IndexMap`.

use anyhow::{Context, anyhow};
use schemars::JsonSchema;
use serde_json::Value;

use super::Config;

const HEADER: &str = "\
Every key, with its default. Generated from the doc comments by
`crm-bridge config --print-defaults` (a test holds docs/bridge.example.toml
to them): edit those, not this file.";

/// The reference, as `docs/bridge.example.toml` holds it.
pub fn reference() -> anyhow::Result<String> {
    reference_of::<Config>()
}

/// Fails on a key without a doc comment, or without a default or example.
fn reference_of<T: JsonSchema>() -> anyhow::Result<String> {
    let schema = schemars::schema_for!(T);
    let root = schema.as_value();
    let mut writer = Writer {
        definitions: root.get("$defs"),
        out: String::new(),
        commented: false,
    };
    writer.doc("the configuration", root)?;
    writer.line("");
    writer.doc_text(HEADER);
    writer.table("", root)?;
    Ok(writer.out)
}

/// What a key holds, as TOML writes it.
enum Shape<'a> {
    Value,
    /// A struct or a map: a `[section]`, with this schema.
    Table(&'a Value),
    /// An array of structs: `[[section]]`s, with the items' schema.
    Tables(&'a Value),
}

struct Writer<'a> {
    definitions: Option<&'a Value>,
    out: String,
    /// Whether lines are commented out (in an array of tables).
    commented: bool,
}

impl<'a> Writer<'a> {
    fn resolve(&self, schema: &'a Value) -> &'a Value {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
            return schema;
        };
        let name = reference.trim_start_matches("#/$defs/");
        self.definitions
            .and_then(|definitions| definitions.get(name))
            .unwrap_or(schema)
    }

    fn shape(&self, schema: &'a Value) -> Shape<'a> {
        let resolved = self.resolve(schema);
        match resolved.get("type").and_then(Value::as_str) {
            Some("object") => Shape::Table(resolved),
            Some("array") => {
                let items = resolved.get("items").map(|items| self.resolve(items));
                match items {
                    Some(items) if items.get("properties").is_some() => Shape::Tables(items),
                    _ => Shape::Value,
                }
            }
            _ => Shape::Value,
        }
    }

    /// The keys of `schema` under `path`: values first, then tables, as
    /// TOML requires.
    fn table(&mut self, path: &str, schema: &'a Value) -> anyhow::Result<()> {
        let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
            return Ok(()); // a map: its keys are the user's
        };
        let keys: Vec<_> = properties
            .iter()
            .map(|(key, field)| (key, field, self.shape(field)))
            .collect();
        for (key, field, shape) in &keys {
            if let Shape::Value = shape {
                self.value(path, key, field)?;
            }
        }
        for (key, field, shape) in &keys {
            let path = if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            };
            match shape {
                Shape::Value => {}
                Shape::Table(table) => {
                    self.line("");
                    self.doc(&path, field)?;
                    self.line(&format!("[{path}]"));
                    self.map_example(field)?;
                    self.table(&path, table)?;
                }
                Shape::Tables(item) => {
                    self.line("");
                    self.doc(&path, field)?;
                    self.commented = true;
                    self.line(&format!("[[{path}]]"));
                    self.table(&path, item)?;
                    self.commented = false;
                }
            }
        }
        Ok(())
    }

    fn value(&mut self, path: &str, key: &str, field: &Value) -> anyhow::Result<()> {
        let path = if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        };
        self.line("");
        self.doc(&path, field)?;
        if let Some(default) = field.get("default").filter(|value| !value.is_null()) {
            return self.line_value(key, default);
        }
        let example = first_example(field)
            .with_context(|| anyhow!("{path} has no default: give it #[schemars(example = …)]"))?;
        let commented = std::mem::replace(&mut self.commented, true);
        let written = self.line_value(key, example);
        self.commented = commented;
        written
    }

    /// A map's example entries (`kafka.properties`), commented out.
    fn map_example(&mut self, field: &Value) -> anyhow::Result<()> {
        let Some(Value::Object(entries)) = first_example(field) else {
            return Ok(());
        };
        let commented = std::mem::replace(&mut self.commented, true);
        for (key, value) in entries {
            self.line_value(key, value)?;
        }
        self.commented = commented;
        Ok(())
    }

    fn line_value(&mut self, key: &str, value: &Value) -> anyhow::Result<()> {
        let value = toml::Value::try_from(value).with_context(|| format!("{key} in TOML"))?;
        self.line(&format!("{} = {value}", toml_key(key)));
        Ok(())
    }

    /// The doc comment (`description`) of a key, else of its type, as `# `
    /// lines.
    fn doc(&mut self, path: &str, schema: &Value) -> anyhow::Result<()> {
        let description = schema
            .get("description")
            .or_else(|| self.resolve(schema).get("description"))
            .and_then(Value::as_str)
            .with_context(|| anyhow!("{path} has no doc comment"))?;
        self.doc_text(description);
        Ok(())
    }

    fn doc_text(&mut self, text: &str) {
        for line in text.lines() {
            self.line(format!("# {line}").trim_end());
        }
    }

    fn line(&mut self, text: &str) {
        for line in text.split('\n') {
            if self.commented && !line.is_empty() {
                self.out.push_str("# ");
            }
            self.out.push_str(line);
            self.out.push('\n');
        }
    }
}

fn first_example(field: &Value) -> Option<&Value> {
    field.get("examples")?.as_array()?.first()
}

/// A key as TOML writes it: bare when it can be, else quoted.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_owned()
    } else {
        toml::Value::String(key.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    const EXAMPLE: &str = "docs/bridge.example.toml";

    fn example_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE)
    }

    #[test]
    fn the_checked_in_example_is_the_reference() {
        let checked_in = std::fs::read_to_string(example_path()).unwrap_or_default();
        assert!(
            checked_in == reference().unwrap(),
            "{EXAMPLE} differs from the configuration's doc comments and defaults; \
             regenerate it: cargo run -- config --print-defaults > {EXAMPLE}"
        );
    }

    #[test]
    fn the_reference_loads_as_the_defaults() {
        Config::load(Some(&example_path())).unwrap();
        let parsed: Config = toml::from_str(&reference().unwrap()).unwrap();
        assert_eq!(format!("{parsed:?}"), format!("{:?}", Config::default()));
    }

    #[test]
    fn a_key_without_a_doc_comment_or_a_default_is_refused() {
        /// Documented.
        #[derive(Default, serde::Deserialize, serde::Serialize, JsonSchema)]
        #[serde(default)]
        struct Undocumented {
            /// Documented.
            documented: u32,
            bare: u32,
        }
        let error = reference_of::<Undocumented>().unwrap_err().to_string();
        assert_eq!(error, "bare has no doc comment");

        /// Documented.
        #[derive(JsonSchema)]
        struct WithoutDefault {
            /// Documented.
            #[allow(dead_code)]
            required: Option<String>,
        }
        let error = reference_of::<WithoutDefault>().unwrap_err().to_string();
        assert!(error.starts_with("required has no default"), "{error}");
    }
}
