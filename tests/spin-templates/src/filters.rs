//! The filters Spin adds to Liquid's standard library.

use heck::{ToKebabCase, ToSnakeCase, ToUpperCamelCase};
use liquid_core::{Display_filter, Filter, FilterReflection, ParseFilter, Runtime, ValueView};

fn text(input: &dyn ValueView) -> Result<String, liquid_core::Error> {
    input
        .as_scalar()
        .map(|scalar| scalar.into_string().to_string())
        .ok_or_else(|| liquid_core::Error::with_msg("String expected"))
}

macro_rules! string_filter {
    ($parser:ident, $filter:ident, $name:literal, $description:literal, $transform:expr) => {
        #[derive(Clone, ParseFilter, FilterReflection)]
        #[filter(name = $name, description = $description, parsed($filter))]
        pub struct $parser;

        #[derive(Debug, Default, Display_filter)]
        #[name = $name]
        struct $filter;

        impl Filter for $filter {
            fn evaluate(
                &self,
                input: &dyn ValueView,
                _runtime: &dyn Runtime,
            ) -> Result<liquid_core::Value, liquid_core::Error> {
                let transform: fn(String) -> String = $transform;
                Ok(liquid_core::Value::scalar(transform(text(input)?)))
            }
        }
    };
}

string_filter!(
    KebabCase,
    KebabCaseFilter,
    "kebab_case",
    "Change text to kebab-case.",
    |text| text.to_kebab_case()
);
string_filter!(
    SnakeCase,
    SnakeCaseFilter,
    "snake_case",
    "Change text to snake_case.",
    |text| text.to_snake_case()
);
string_filter!(
    PascalCase,
    PascalCaseFilter,
    "pascal_case",
    "Change text to PascalCase.",
    |text| text.to_upper_camel_case()
);
string_filter!(
    DottedPascalCase,
    DottedPascalCaseFilter,
    "dotted_pascal_case",
    "Change text to Dotted.Pascal.Case.",
    |text| text
        .split('.')
        .map(|part| part.to_upper_camel_case())
        .collect::<Vec<_>>()
        .join(".")
);
string_filter!(
    HttpWildcard,
    HttpWildcardFilter,
    "http_wildcard",
    "Add Spin HTTP wildcard suffix (/...) if needed.",
    |route| if route.ends_with("/...") {
        route
    } else if route.ends_with('/') {
        format!("{route}...")
    } else {
        format!("{route}/...")
    }
);

/// Liquid with its standard library and Spin's filters.
pub fn parser() -> anyhow::Result<liquid::Parser> {
    Ok(liquid::ParserBuilder::with_stdlib()
        .filter(KebabCase)
        .filter(SnakeCase)
        .filter(PascalCase)
        .filter(DottedPascalCase)
        .filter(HttpWildcard)
        .build()?)
}
