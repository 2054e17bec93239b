//! One resolver for every configuration: defaults ← TOML file ← flags. Pretraining and
//! fine-tuning both read their file here, with the same error messages (the file's path, then
//! what is wrong: an unknown key, a bad value), and a run's saved `config.toml` reads back through
//! [`read_saved`].

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ConfigError, Method, PretrainConfig, PretrainFlags};

/// Copies each flag of `$flags` that was given (`Some`) into the same field of `$config`.
macro_rules! set_given {
    ($flags:expr => $config:expr; $($field:ident),* $(,)?) => {
        $(if let Some(v) = &$flags.$field { $config.$field = v.clone(); })*
    };
}

/// Pushes the name of each flag of `$flags` that was given onto `$given`.
macro_rules! flags_given {
    ($flags:expr => $given:expr; $($field:ident => $flag:literal),* $(,)?) => {
        $(if $flags.$field.is_some() { $given.push($flag); })*
    };
}

pub(crate) use {flags_given, set_given};

/// Reads a TOML configuration file as a table.
pub fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    text.parse()
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

/// The value of `key` in a file's table, if it is there.
pub fn value<T: DeserializeOwned>(
    path: &Path,
    table: &toml::Table,
    key: &str,
) -> Result<Option<T>, ConfigError> {
    table
        .get(key)
        .map(|v| {
            v.clone()
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Parse {
                    path: path.display().to_string(),
                    message: format!("{key}: {e}"),
                })
        })
        .transpose()
}

/// `defaults` with the file's table laid over it, key by key (nested tables merge). An unknown
/// key is an error when the configuration denies unknown fields.
pub fn overlay<T: Serialize + DeserializeOwned>(
    defaults: &T,
    path: &Path,
    table: toml::Table,
) -> Result<T, ConfigError> {
    let mut merged = toml::Table::try_from(defaults).expect("a configuration serialises");
    merge(&mut merged, table);
    toml::Value::Table(merged)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

/// Reads a configuration saved with a run.
pub fn read_saved<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Resolves a pretraining configuration: defaults ← config file ← flags, then validates it.
pub fn resolve(file: Option<&Path>, flags: &PretrainFlags) -> Result<PretrainConfig, ConfigError> {
    let table = file
        .map(|path| read_table(path).map(|t| (path, t)))
        .transpose()?;
    // The method picks the defaults, so it is settled first: flag, then file.
    let from_file = match &table {
        Some((path, table)) => value::<Method>(path, table, "method")?,
        None => None,
    };
    let method = flags.method.or(from_file).unwrap_or(Method::ExemplarV2);
    let mut config = PretrainConfig::defaults(method);
    if let Some((path, mut table)) = table {
        table.insert("method".into(), toml::Value::String(method.name().into()));
        config = overlay(&config, path, table)?;
    }
    flags.apply(&mut config);
    config.validate()?;
    Ok(config)
}

/// Overlays `over` onto `base`, merging nested tables key by key.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(inner)), toml::Value::Table(over_inner)) => {
                merge(inner, over_inner)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}
