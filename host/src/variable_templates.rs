//! `[variables]` declarations and the `{{ var }}` templates that refer to them: what a manifest
//! declares, before any value is known (values are resolved by [`crate::variables`]).

use std::collections::BTreeMap;
use std::fmt;

use anyhow::Context;

/// One `[variables]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VariableDecl {
    /// The value when no provider gives one.
    pub default: Option<String>,
    /// A value must come from a provider (`--variable`, the runtime config, the environment).
    pub required: bool,
    /// A secret's value is never logged.
    pub secret: bool,
}

/// Checks a variable name as Spin does: lowercase ASCII letters, digits and `_`, starting with a
/// letter.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid_start = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let valid_rest = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid_start && valid_rest {
        Ok(())
    } else {
        Err(format!(
            "invalid variable name `{name}`: use lowercase letters, digits and `_`, starting with a letter"
        ))
    }
}

/// A string that may refer to application variables as `{{ name }}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(String),
}

impl Template {
    /// Parses `text`; a malformed expression is an error that says what to write.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let after_open = &rest[open + 2..];
            let Some(close) = after_open.find("}}") else {
                return Err(format!(
                    "unclosed `{{{{` in \"{text}\": write `{{{{ variable_name }}}}`"
                ));
            };
            let name = after_open[..close].trim();
            check_name(name)?;
            parts.push(Part::Variable(name.to_owned()));
            rest = &after_open[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// The application variables the template refers to.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Variable(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Renders with resolved application variables; every reference must be present, which
    /// loading guarantees.
    pub fn render(&self, values: &BTreeMap<String, String>) -> anyhow::Result<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(name) => out.push_str(
                    values
                        .get(name)
                        .with_context(|| format!("variable `{name}` has no value"))?,
                ),
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                Part::Literal(text) => f.write_str(text)?,
                Part::Variable(name) => write!(f, "{{{{ {name} }}}}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_round_trips_literals_and_references() {
        let template = Template::parse("redis://{{ host }}:{{port}}/0").unwrap();
        assert_eq!(template.references().collect::<Vec<_>>(), ["host", "port"]);
        let values = BTreeMap::from([
            ("host".to_owned(), "127.0.0.1".to_owned()),
            ("port".to_owned(), "6379".to_owned()),
        ]);
        assert_eq!(
            template.render(&values).unwrap(),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(template.to_string(), "redis://{{ host }}:{{ port }}/0");
    }

    #[test]
    fn template_errors_say_what_to_write() {
        assert_eq!(
            Template::parse("{{ oops").unwrap_err(),
            "unclosed `{{` in \"{{ oops\": write `{{ variable_name }}`"
        );
        assert_eq!(
            Template::parse("{{ Bad-Name }}").unwrap_err(),
            "invalid variable name `Bad-Name`: use lowercase letters, digits and `_`, starting with a letter"
        );
    }

    #[test]
    fn names_follow_spin_rules() {
        assert!(check_name("message").is_ok());
        assert!(check_name("api_key2").is_ok());
        for bad in [
            "",
            "4invalid",
            "invalid-name",
            "invalid!name",
            "Upper",
            "_lead",
        ] {
            assert!(check_name(bad).is_err(), "{bad} should be invalid");
        }
    }
}
