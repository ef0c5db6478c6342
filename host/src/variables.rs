//! Application variables: declarations, `{{ var }}` templates, and resolution at start-up.
//!
//! Values come, in order, from `--variable name=value`, the environment
//! (`SPIN_VARIABLE_<NAME>`), then the declared default, as in Spin.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Context, bail};

use crate::app::App;

/// One `[variables]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VariableDecl {
    pub default: Option<String>,
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

/// Where variable values come from, highest priority first.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    /// `--variable name=value` pairs.
    pub cli: BTreeMap<String, String>,
    /// The process environment, read for `SPIN_VARIABLE_<NAME>`.
    pub env: BTreeMap<String, String>,
}

impl Providers {
    /// Providers from command-line pairs and this process's environment.
    pub fn from_process(cli: BTreeMap<String, String>) -> Self {
        Providers {
            cli,
            env: std::env::vars().collect(),
        }
    }

    fn lookup(&self, name: &str, decl: &VariableDecl) -> Option<String> {
        self.cli
            .get(name)
            .or_else(|| self.env.get(&env_name(name)))
            .or(decl.default.as_ref())
            .cloned()
    }
}

/// The environment variable that provides `name`: `SPIN_VARIABLE_<NAME>`.
pub fn env_name(name: &str) -> String {
    format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase())
}

/// Parses one `--variable name=value` argument.
pub fn parse_cli_pair(pair: &str) -> Result<(String, String), String> {
    let (name, value) = pair
        .split_once('=')
        .ok_or_else(|| format!("`{pair}` is not `name=value`"))?;
    check_name(name)?;
    Ok((name.to_owned(), value.to_owned()))
}

/// Every variable's value, resolved once at start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedVariables {
    /// Application variable name to value.
    pub application: BTreeMap<String, String>,
    /// Component id to its variables' rendered values.
    pub components: BTreeMap<String, BTreeMap<String, String>>,
}

impl ResolvedVariables {
    /// Resolves every application variable and renders every component's variables. A required
    /// variable without a value, or a `--variable` the app does not declare, is an error.
    pub fn resolve(app: &App, providers: &Providers) -> anyhow::Result<Self> {
        for name in providers.cli.keys() {
            if !app.variables.contains_key(name) {
                bail!(
                    "--variable {name}=...: {} declares no variable `{name}` in [variables]",
                    app.origin.display()
                );
            }
        }
        let mut application = BTreeMap::new();
        for (name, decl) in &app.variables {
            match providers.lookup(name, decl) {
                Some(value) => {
                    application.insert(name.clone(), value);
                }
                None => bail!(
                    "variable `{name}` is required but has no value: pass `--variable {name}=<value>` or set {}",
                    env_name(name)
                ),
            }
        }
        let mut components = BTreeMap::new();
        for (id, component) in &app.components {
            let mut values = BTreeMap::new();
            for (name, template) in &component.variables {
                let value = template
                    .render(&application)
                    .with_context(|| format!("rendering variable `{name}` of component `{id}`"))?;
                values.insert(name.clone(), value);
            }
            components.insert(id.clone(), values);
        }
        Ok(ResolvedVariables {
            application,
            components,
        })
    }

    /// Renders a template against the application variables (trigger settings use this).
    pub fn render(&self, template: &Template) -> anyhow::Result<String> {
        template.render(&self.application)
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

    #[test]
    fn cli_pairs_split_on_the_first_equals() {
        assert_eq!(
            parse_cli_pair("query=a=b").unwrap(),
            ("query".to_owned(), "a=b".to_owned())
        );
        assert_eq!(
            parse_cli_pair("novalue").unwrap_err(),
            "`novalue` is not `name=value`"
        );
    }
}
