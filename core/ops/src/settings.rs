//! Configuration files in TBMQ's style: YAML whose leaves are `"${ENV_NAME:default}"`.
//!
//! A file maps every setting to the environment variable that overrides it and gives its
//! default, so the file doubles as the list of every variable. [`Settings::lookup`] answers a
//! variable from the environment first, then from the file; each service builds its typed config
//! from that lookup (`ExecutorConfig::from_lookup`, ...). A leaf without a placeholder is a plain
//! value with no variable (allowed for keys that have none).

mod mask;

use std::collections::BTreeMap;

use yaml_rust2::{Yaml, YamlLoader};

/// A problem with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// Not YAML.
    #[error("not valid YAML: {0}")]
    Yaml(String),
    /// A placeholder is malformed.
    #[error("key {key}: malformed placeholder '{value}' (expected \"${{ENV_NAME:default}}\")")]
    Placeholder {
        /// Dotted key.
        key: String,
        /// The value.
        value: String,
    },
    /// The same variable appears twice with different defaults.
    #[error("variable {name} has two defaults: '{first}' and '{second}'")]
    Conflict {
        /// Variable.
        name: String,
        /// First default.
        first: String,
        /// Second default.
        second: String,
    },
}

/// One setting of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Dotted YAML key, e.g. `listener.tcp.bind_port`.
    pub key: String,
    /// Environment variable, if the leaf has a placeholder.
    pub env: Option<String>,
    /// Default from the file.
    pub default: String,
}

/// A parsed settings file plus the environment.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    settings: Vec<Setting>,
    defaults: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
}

impl Settings {
    /// Parses YAML text; `env` is the environment to look variables up in first.
    pub fn parse(text: &str, env: BTreeMap<String, String>) -> Result<Self, SettingsError> {
        let docs = YamlLoader::load_from_str(text).map_err(|e| SettingsError::Yaml(e.to_string()))?;
        let mut settings = Vec::new();
        for doc in &docs {
            flatten(doc, "", &mut settings)?;
        }
        let mut defaults: BTreeMap<String, String> = BTreeMap::new();
        for s in &settings {
            if let Some(name) = &s.env {
                if let Some(first) = defaults.get(name) {
                    if *first != s.default {
                        return Err(SettingsError::Conflict {
                            name: name.clone(),
                            first: first.clone(),
                            second: s.default.clone(),
                        });
                    }
                }
                defaults.insert(name.clone(), s.default.clone());
            }
        }
        Ok(Settings { settings, defaults, env })
    }

    /// Several files merged (later files win for the same variable), with the process environment.
    pub fn from_files(texts: &[&str]) -> Result<Self, SettingsError> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        let mut merged = Settings { env: env.clone(), ..Default::default() };
        for text in texts {
            let s = Settings::parse(text, env.clone())?;
            merged.settings.extend(s.settings);
            merged.defaults.extend(s.defaults);
        }
        Ok(merged)
    }

    /// The value of a variable: the environment, else the file's default; `None` when neither
    /// has it.
    pub fn lookup(&self, name: &str) -> Option<String> {
        self.env.get(name).or_else(|| self.defaults.get(name)).cloned()
    }

    /// Every setting, in file order.
    pub fn settings(&self) -> &[Setting] {
        &self.settings
    }

    /// Every variable named in the files.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.defaults.keys().map(String::as_str)
    }

    /// `key = value  # ENV (source)` lines of the effective configuration, with secrets masked
    /// (`settings/mask.rs`): values of variables named like a secret (`PASSWORD`, `SECRET`,
    /// `SIGNING_KEY`), secret properties in `TB_KAFKA_*CONFIG` property strings (`sasl.password`,
    /// `sasl.jaas.config`, ...) and the password of any URL (`SPRING_DATASOURCE_URL`).
    pub fn render_effective(&self) -> String {
        let mut out = String::new();
        for s in &self.settings {
            let (value, source) = match &s.env {
                Some(name) => match self.env.get(name) {
                    Some(v) => (v.clone(), format!("{name}, from the environment")),
                    None => (s.default.clone(), format!("{name}, default")),
                },
                None => (s.default.clone(), "fixed".to_string()),
            };
            let shown = mask::shown(s.env.as_deref(), &value);
            out.push_str(&format!("{} = {:?}  # {}\n", s.key, shown, source));
        }
        out
    }
}

fn flatten(node: &Yaml, prefix: &str, out: &mut Vec<Setting>) -> Result<(), SettingsError> {
    match node {
        Yaml::Hash(map) => {
            for (k, v) in map {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    other => format!("{other:?}"),
                };
                let full = if prefix.is_empty() { key } else { format!("{prefix}.{key}") };
                flatten(v, &full, out)?;
            }
            Ok(())
        }
        Yaml::String(s) => leaf(prefix, s, out),
        Yaml::Integer(i) => leaf(prefix, &i.to_string(), out),
        Yaml::Real(r) => leaf(prefix, r, out),
        Yaml::Boolean(b) => leaf(prefix, &b.to_string(), out),
        Yaml::Null => leaf(prefix, "", out),
        Yaml::Array(items) => {
            let text = items.iter().filter_map(Yaml::as_str).collect::<Vec<_>>().join(",");
            leaf(prefix, &text, out)
        }
        other => Err(SettingsError::Yaml(format!("unsupported value at {prefix}: {other:?}"))),
    }
}

fn leaf(key: &str, value: &str, out: &mut Vec<Setting>) -> Result<(), SettingsError> {
    let v = value.trim();
    if let Some(inner) = v.strip_prefix("${") {
        let inner = inner.strip_suffix('}').ok_or_else(|| placeholder(key, value))?;
        let (name, default) = inner.split_once(':').unwrap_or((inner, ""));
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
            return Err(placeholder(key, value));
        }
        out.push(Setting { key: key.to_string(), env: Some(name.to_string()), default: default.to_string() });
    } else {
        out.push(Setting { key: key.to_string(), env: None, default: v.to_string() });
    }
    Ok(())
}

fn placeholder(key: &str, value: &str) -> SettingsError {
    SettingsError::Placeholder { key: key.to_string(), value: value.to_string() }
}

#[cfg(test)]
mod tests;
