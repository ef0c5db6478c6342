//! The vocabulary every app source is validated in, whichever file (or builder) it came from:
//! [`ManifestError`], the [`Validation`] context a trigger type checks its tables with, a
//! component as written ([`RawComponent`]) and its validation into a [`Component`].

use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::Path;

use crate::component::Component;
use crate::limits::{
    HandlerLimits, TABLE_ELEMENTS_RANGE, check_duration, check_in_range, parse_memory_size,
};
use crate::variable_templates::{Template, VariableDecl};

mod component;
mod raw;

pub(crate) use component::validate_component;
pub(crate) use raw::{
    RawComponent, RawComponentRef, RawFileEntry, RawFileMount, RawTable, RawTables,
};

/// Why a manifest could not be loaded. Its text is the whole diagnosis.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(String);

impl ManifestError {
    pub(crate) fn new(message: String) -> Self {
        ManifestError(message)
    }

    pub(crate) fn at(file: &Path, location: impl fmt::Display, message: impl fmt::Display) -> Self {
        ManifestError(format!("{}: {location}: {message}", file.display()))
    }
}

/// Where the `index`th `[[trigger.<trigger_type>]]` is, as errors name it.
pub(crate) fn trigger_location(trigger_type: &str, index: usize) -> String {
    format!("trigger.{trigger_type}[{index}]")
}

/// What validating components and triggers needs to know about the whole manifest, and the
/// components validated so far (inline ones join as their triggers are validated).
pub struct Validation<'a> {
    pub(crate) file: &'a Path,
    pub(crate) base_dir: &'a Path,
    /// The manifest's text, for line numbers; `None` for a locked app.
    pub(crate) text: Option<&'a str>,
    pub(crate) variables: &'a BTreeMap<String, VariableDecl>,
    pub(crate) components: BTreeMap<String, Component>,
}

impl Validation<'_> {
    /// An error at `location` (`trigger.redis[0].channel`) of the file being validated.
    pub fn error(&self, location: &str, message: String) -> ManifestError {
        ManifestError::at(self.file, location, message)
    }

    /// Reads a trigger type's table into its serde struct; an error names the field, and the
    /// line the table starts on.
    pub(crate) fn deserialize<T: serde::de::DeserializeOwned>(
        &self,
        table: RawTable,
        location: &str,
    ) -> Result<T, ManifestError> {
        serde_path_to_error::deserialize(table.value).map_err(|error| {
            let path = error.path().to_string();
            let field = error.path().iter().rev().find_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                _ => None,
            });
            let location = if path == "." {
                location.to_owned()
            } else {
                format!("{location}.{path}")
            };
            let mut message = error.into_inner().to_string();
            if let (Some(text), Some(offset)) = (self.text, table.offset) {
                let line = line_of(text, offset, field.as_deref());
                message.push_str(&format!(" (line {line})"));
            }
            self.error(&location, message)
        })
    }

    /// Splits a trigger table into what every type has (`id`, `component`, and our handler
    /// limits `handler_timeout`, `max_memory` and `max_table_elements`) and the rest, which the
    /// type reads.
    pub(crate) fn split_trigger_table(
        &self,
        mut table: RawTable,
        location: &str,
    ) -> Result<(Option<String>, RawComponentRef, HandlerLimits, RawTable), ManifestError> {
        let serde_json::Value::Object(fields) = &mut table.value else {
            return Err(self.error(location, "expected a table".into()));
        };
        let mut take = |name: &str| fields.remove(name);
        let (id, component) = (take("id"), take("component"));
        let (timeout, max_memory) = (take("handler_timeout"), take("max_memory"));
        let max_table_elements = take("max_table_elements");
        let offset = table.offset;
        let field = |value: serde_json::Value| RawTable {
            value,
            offset,
            location: None,
        };
        let id = id
            .map(|id| self.deserialize::<String>(field(id), &format!("{location}.id")))
            .transpose()?;
        let component = component.ok_or_else(|| {
            self.error(
                location,
                "missing field `component`: name a component (`component = \"my-component\"`) or define one inline".into(),
            )
        })?;
        let component = self.deserialize(field(component), &format!("{location}.component"))?;
        let timeout = timeout
            .map(|value| {
                let at = format!("{location}.handler_timeout");
                let text: String = self.deserialize(field(value), &at)?;
                self.duration(&text, &at, "\"30s\" or \"500ms\"")
            })
            .transpose()?;
        let max_memory = max_memory
            .map(|value| {
                let at = format!("{location}.max_memory");
                let text: String = self.deserialize(field(value), &at)?;
                parse_memory_size(&text).map_err(|message| self.error(&at, message))
            })
            .transpose()?;
        let max_table_elements = max_table_elements
            .map(|value| {
                let at = format!("{location}.max_table_elements");
                let elements = self.deserialize::<usize>(field(value), &at)?;
                self.count(elements, &TABLE_ELEMENTS_RANGE, &at, "")
            })
            .transpose()?;
        let limits = HandlerLimits {
            timeout,
            max_memory,
            max_table_elements,
        };
        Ok((id, component, limits, table))
    }

    /// A duration field (humantime: `"250ms"`, `"1m 30s"`) in [`DURATION_RANGE`]; an error
    /// shows `examples` of what to write.
    pub fn duration(
        &self,
        text: &str,
        location: &str,
        examples: &str,
    ) -> Result<std::time::Duration, ManifestError> {
        let duration = humantime::parse_duration(text).map_err(|error| {
            self.error(
                location,
                format!("\"{text}\" is not a duration ({error}): write e.g. {examples}"),
            )
        })?;
        check_duration(text, duration).map_err(|message| self.error(location, message))?;
        Ok(duration)
    }

    /// An optional duration field: `default` when it is absent, else as [`Self::duration`].
    pub(crate) fn duration_or(
        &self,
        text: Option<&str>,
        default: std::time::Duration,
        location: &str,
        examples: &str,
    ) -> Result<std::time::Duration, ManifestError> {
        text.map_or(Ok(default), |text| self.duration(text, location, examples))
    }

    /// A whole-number field in `range`, the field named when outside it.
    pub fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
        &self,
        value: T,
        range: &RangeInclusive<T>,
        location: &str,
    ) -> Result<T, ManifestError> {
        check_in_range(value, range).map_err(|message| self.error(location, message))?;
        Ok(value)
    }

    /// A count (`max_in_flight`, `batch_size`, ...): at least 1, else an error in which `hint`
    /// says what small values mean, and within `range`.
    pub(crate) fn count<T: PartialOrd + fmt::Display + Copy + From<u8>>(
        &self,
        value: T,
        range: &RangeInclusive<T>,
        location: &str,
        hint: &str,
    ) -> Result<T, ManifestError> {
        if value == T::from(0) {
            let message = match hint {
                "" => "must be at least 1".to_owned(),
                hint => format!("must be at least 1 ({hint})"),
            };
            return Err(self.error(location, message));
        }
        self.in_range(value, range, location)
    }

    /// A template field that must not be blank; `if_blank` says what to write instead.
    pub(crate) fn non_blank_template(
        &self,
        text: &str,
        location: &str,
        if_blank: &str,
    ) -> Result<Template, ManifestError> {
        if text.trim().is_empty() {
            return Err(self.error(location, if_blank.to_owned()));
        }
        self.template(text, location)
    }

    /// Parses a `{{ var }}` template whose references must all be declared in [variables].
    pub fn template(&self, text: &str, location: &str) -> Result<Template, ManifestError> {
        let template = Template::parse(text)
            .map_err(|message| ManifestError::at(self.file, location, message))?;
        if let Some(missing) = template
            .references()
            .find(|name| !self.variables.contains_key(*name))
        {
            return Err(ManifestError::at(
                self.file,
                location,
                format!(
                    "refers to `{{{{ {missing} }}}}`, which [variables] does not declare; add `{missing} = {{ default = \"...\" }}` there"
                ),
            ));
        }
        Ok(template)
    }

    /// The id of the component a trigger names, validating an inline one into `components`.
    pub(crate) fn resolve_component(
        &mut self,
        reference: RawComponentRef,
        trigger_id: &str,
        location: &str,
    ) -> Result<String, ManifestError> {
        match reference {
            RawComponentRef::Id(component) if self.components.contains_key(&component) => {
                Ok(component)
            }
            RawComponentRef::Id(component) => {
                let defined: Vec<&str> = self.components.keys().map(String::as_str).collect();
                Err(ManifestError::at(
                    self.file,
                    format!("{location}.component"),
                    format!(
                        "no component `{component}`: define [component.{component}] or use one of: {}",
                        if defined.is_empty() {
                            "(none defined)".to_owned()
                        } else {
                            defined.join(", ")
                        }
                    ),
                ))
            }
            RawComponentRef::Inline(inline) => {
                let component_id = format!("{trigger_id}-component");
                let component = validate_component(
                    &component_id,
                    *inline,
                    &format!("{location}.component"),
                    self,
                )?;
                self.components.insert(component_id.clone(), component);
                Ok(component_id)
            }
        }
    }
}

/// The line of `field = ...` in the table starting at `offset` (the first line at or after it
/// that assigns `field`), else the table's own line.
fn line_of(text: &str, offset: usize, field: Option<&str>) -> usize {
    let offset = offset.min(text.len());
    let table_line = text[..offset].matches('\n').count() + 1;
    let Some(field) = field else {
        return table_line;
    };
    let line_start = text[..offset].rfind('\n').map_or(0, |newline| newline + 1);
    text[line_start..]
        .lines()
        .position(|line| {
            line.trim_start()
                .trim_start_matches('"')
                .strip_prefix(field)
                .is_some_and(|rest| rest.trim_start_matches('"').trim_start().starts_with('='))
        })
        .map_or(table_line, |index| table_line + index)
}
