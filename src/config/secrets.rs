//! Secrets kept out of the config file, the command line and `ps`.
//!
//! One rule for every setting that holds a secret or a PEM document: `X` may
//! instead be given as `X_file`, the path of a file holding the value (a
//! Kubernetes Secret or a Docker secret mounted as a file). librdkafka's
//! properties use dots, so a property `x.y` is given as `x.y.file`. In the
//! environment both read alike: `..._FILE`. A file is read once, at
//! start-up; line breaks at its end are dropped (`echo` and editors add
//! one), and an empty file is an error (a Secret that failed to mount).
//! Giving both `X` and `X_file` is an error. Errors name the setting and the
//! path, never the content.
//!
//! librdkafka properties come, lowest first, from `kafka.properties_file`
//! (Java properties), `kafka.properties`, and `CRM_BRIDGE_KAFKA_PROPERTY_<NAME>`
//! variables, `NAME` being the property with `.` written `_`
//! (`CRM_BRIDGE_KAFKA_PROPERTY_SASL_PASSWORD_FILE` is `sasl.password.file`):
//! figment's `__` nesting cannot spell a key that contains dots. librdkafka
//! names a handful of properties with underscores instead
//! ([`UNDERSCORED_PROPERTIES`]); those are recognised whole
//! (`..._LOG_LEVEL` is `log_level`), so the mapping is exact. A higher
//! source's `x.y` or `x.y.file` replaces a lower source's `x.y` and
//! `x.y.file` alike.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::auth::Secret;
use crate::kafka::KafkaProperties;

/// Environment variables naming one librdkafka property each.
pub const PROPERTY_ENV_PREFIX: &str = "CRM_BRIDGE_KAFKA_PROPERTY_";

/// The librdkafka properties whose names hold underscores rather than dots
/// (librdkafka 2.12.1's, every other name is dotted; a test compares this
/// list with the linked build's). Most are set through librdkafka's API, not
/// by name; `log_level` is the one an operator might set.
pub const UNDERSCORED_PROPERTIES: [&str; 6] = [
    "enable_sasl_queue",
    "enabled_events",
    "log_cb",
    "log_level",
    "open_cb",
    "socket_cb",
];

/// What a librdkafka property's name ends with when its value is in a file.
const PROPERTY_FILE_SUFFIX: &str = ".file";

/// Whether a `CRM_BRIDGE_` variable (prefix stripped, any case) is one of
/// [`PROPERTY_ENV_PREFIX`]'s, which figment must leave alone.
pub fn is_property_variable(key_after_prefix: &str) -> bool {
    let property_prefix = &PROPERTY_ENV_PREFIX["CRM_BRIDGE_".len()..];
    key_after_prefix
        .get(..property_prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(property_prefix))
}

/// The content of the secret file `path` given for `setting`.
pub fn read_file(setting: &str, path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{setting}: reading {}", path.display()))?;
    let value = text.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!value.is_empty(), "{setting}: {} is empty", path.display());
    Ok(value.to_owned())
}

/// Applies the `X_file` rule to one setting: reads `file` into `value`
/// (then `file` is `None`, so resolving again changes nothing).
pub fn resolve<T>(
    setting: &str,
    value: &mut Option<T>,
    file: &mut Option<PathBuf>,
    wrap: impl FnOnce(String) -> T,
) -> anyhow::Result<()> {
    let Some(path) = file.take() else {
        return Ok(());
    };
    anyhow::ensure!(
        value.is_none(),
        "{setting} and {setting}_file are both set; set one"
    );
    *value = Some(wrap(read_file(&format!("{setting}_file"), &path)?));
    Ok(())
}

/// [`resolve`] for a [`Secret`].
pub fn resolve_secret(
    setting: &str,
    value: &mut Option<Secret>,
    file: &mut Option<PathBuf>,
) -> anyhow::Result<()> {
    resolve(setting, value, file, Secret::new)
}

/// The properties named by [`PROPERTY_ENV_PREFIX`] variables among `vars`.
pub fn properties_from_env(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
) -> anyhow::Result<KafkaProperties> {
    let mut properties = KafkaProperties::default();
    for (key, value) in vars {
        let Some(key) = key.to_str() else { continue };
        let Some(name) = key
            .get(..PROPERTY_ENV_PREFIX.len())
            .filter(|head| head.eq_ignore_ascii_case(PROPERTY_ENV_PREFIX))
            .map(|_| &key[PROPERTY_ENV_PREFIX.len()..])
        else {
            continue;
        };
        anyhow::ensure!(
            !name.is_empty() && name.split('_').all(|part| !part.is_empty()),
            "{key}: not a librdkafka property (write its name upper-cased, `.` as `_`)"
        );
        let value = value
            .into_string()
            .map_err(|_| anyhow::anyhow!("{key} is not UTF-8"))?;
        properties.insert(property_of_variable(name), value);
    }
    Ok(properties)
}

/// `SASL_PASSWORD` → `sasl.password`, `LOG_LEVEL_FILE` → `log_level.file`.
fn property_of_variable(name: &str) -> String {
    let dotted = name.to_ascii_lowercase().replace('_', ".");
    let (property, file) = match dotted.strip_suffix(PROPERTY_FILE_SUFFIX) {
        Some(property) => (property, PROPERTY_FILE_SUFFIX),
        None => (dotted.as_str(), ""),
    };
    match UNDERSCORED_PROPERTIES
        .iter()
        .find(|underscored| underscored.replace('_', ".") == property)
    {
        Some(underscored) => format!("{underscored}{file}"),
        None => dotted,
    }
}

/// Java-properties text (`kafka.properties_file`): `key=value` or
/// `key: value` lines, `#` and `!` comments, a `\` at a line's end
/// continuing it on the next; whitespace around keys and values is dropped.
/// No other escapes: a value's backslashes are its own. Errors give the
/// line number, never the line (it may hold a password).
pub fn parse_properties(text: &str) -> Result<KafkaProperties, String> {
    let mut properties = KafkaProperties::default();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let mut line = line.trim().to_owned();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        while line.ends_with('\\') {
            line.pop();
            match lines.next() {
                Some((_, next)) => line.push_str(next.trim_start()),
                None => break,
            }
        }
        let Some((key, value)) = line.split_once(['=', ':']) else {
            return Err(format!("line {}: not `key=value`", index + 1));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(format!("line {}: no key before `=`", index + 1));
        }
        properties.insert(key.to_owned(), value.trim().to_owned());
    }
    Ok(properties)
}

/// A property's name without [`PROPERTY_FILE_SUFFIX`].
fn property_name(key: &str) -> &str {
    key.strip_suffix(PROPERTY_FILE_SUFFIX).unwrap_or(key)
}

/// `upper`, with the properties of `lower` that `upper` does not give in
/// either form (`x.y` or `x.y.file`).
pub fn merge_under(mut upper: KafkaProperties, lower: KafkaProperties) -> KafkaProperties {
    for (key, value) in lower {
        let name = property_name(&key);
        let file = format!("{name}{PROPERTY_FILE_SUFFIX}");
        if !upper.contains_key(name) && !upper.contains_key(&file) {
            upper.insert(key, value);
        }
    }
    upper
}

/// Reads `properties_file` under `properties`, then every `x.y.file` into
/// `x.y`. Afterwards there is nothing left to read.
pub fn resolve_kafka(
    properties: &mut KafkaProperties,
    properties_file: &mut Option<PathBuf>,
) -> anyhow::Result<()> {
    if let Some(path) = properties_file.take() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("kafka.properties_file: reading {}", path.display()))?;
        let from_file = parse_properties(&text)
            .map_err(|e| anyhow::anyhow!("kafka.properties_file {}: {e}", path.display()))?;
        *properties = merge_under(std::mem::take(properties), from_file);
    }
    let files: Vec<(String, String)> = properties
        .iter()
        .filter(|(key, _)| key.ends_with(PROPERTY_FILE_SUFFIX))
        .map(|(key, path)| (key.clone(), path.clone()))
        .collect();
    for (key, path) in files {
        let name = property_name(&key).to_owned();
        anyhow::ensure!(
            !properties.contains_key(&name),
            "kafka property {name} is given both as {name} and as {key}; give one"
        );
        let value = read_file(&format!("kafka property {key}"), Path::new(&path))?;
        properties.remove(&key);
        properties.insert(name, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
