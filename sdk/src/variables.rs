//! Application variables, as the component's `[component.<id>.variables]` in spin.toml defines them.

use crate::__private::imports::fermyon::spin2_0_0::variables as wit;

/// Why a variable could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The name is not a valid variable name (lowercase letters, digits and `_`, starting with a
    /// letter).
    InvalidName(String),
    /// The component has no variable of that name.
    Undefined(String),
    /// The variables provider failed.
    Provider(String),
    /// Any other host failure.
    Other(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidName(message) => write!(f, "invalid variable name: {message}"),
            Error::Undefined(message) => write!(f, "undefined variable: {message}"),
            Error::Provider(message) => write!(f, "variables provider error: {message}"),
            Error::Other(message) => write!(f, "variables error: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<wit::Error> for Error {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::InvalidName(message) => Error::InvalidName(message),
            wit::Error::Undefined(message) => Error::Undefined(message),
            wit::Error::Provider(message) => Error::Provider(message),
            wit::Error::Other(message) => Error::Other(message),
        }
    }
}

/// Gets the value of one of the component's variables.
///
/// ```no_run
/// let message = spin_trigger_sdk::variables::get("message")?;
/// println!("{message}");
/// # Ok::<(), spin_trigger_sdk::variables::Error>(())
/// ```
pub fn get(name: &str) -> Result<String, Error> {
    wit::get(name).map_err(Error::from)
}
