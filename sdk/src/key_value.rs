//! Key-value stores: byte values under string keys, kept between events and between runs.
//!
//! A component may open the stores its `key_value_stores` lists in spin.toml; `default` exists
//! without configuration (on this project's host, and on Spin, a SQLite file in the app's
//! `.spin/` directory). Built on `fermyon:spin/key-value@2.0.0`, so the component runs on Spin
//! too. The names are spin-sdk's where they mean the same.
//!
//! ```no_run
//! use spin_trigger_sdk::key_value::Store;
//!
//! let store = Store::open_default()?;
//! let runs = match store.get("runs")? {
//!     Some(bytes) => String::from_utf8_lossy(&bytes).parse::<u64>().unwrap_or(0),
//!     None => 0,
//! };
//! store.set("runs", (runs + 1).to_string().as_bytes())?;
//! # Ok::<(), spin_trigger_sdk::key_value::Error>(())
//! ```

use crate::__private::imports::fermyon::spin2_0_0::key_value as wit;

/// Why a store call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The instance has as many stores open as the host allows; drop one first.
    StoreTableFull,
    /// The host knows no store with this label.
    NoSuchStore,
    /// The component may not open this store: add its label to `key_value_stores`.
    AccessDenied,
    /// A value could not be turned into JSON or back ([`Store::get_json`], [`Store::set_json`]).
    Json(String),
    /// The store failed (I/O, a lost connection).
    Other(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::StoreTableFull => write!(f, "too many key-value stores open"),
            Error::NoSuchStore => write!(f, "no such key-value store"),
            Error::AccessDenied => write!(
                f,
                "access denied: the store's label is not in the component's key_value_stores"
            ),
            Error::Json(message) => write!(f, "key-value JSON error: {message}"),
            Error::Other(message) => write!(f, "key-value store error: {message}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<wit::Error> for Error {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::StoreTableFull => Error::StoreTableFull,
            wit::Error::NoSuchStore => Error::NoSuchStore,
            wit::Error::AccessDenied => Error::AccessDenied,
            wit::Error::Other(message) => Error::Other(message),
        }
    }
}

/// An open key-value store; closed when dropped.
pub struct Store(wit::Store);

impl Store {
    /// Opens the store labelled `default`.
    pub fn open_default() -> Result<Self, Error> {
        Self::open("default")
    }

    /// Opens the store with this label (one of the component's `key_value_stores`).
    pub fn open(label: impl AsRef<str>) -> Result<Self, Error> {
        Ok(Store(wit::Store::open(label.as_ref())?))
    }

    /// The value at `key`, `None` when it has none.
    pub fn get(&self, key: impl AsRef<str>) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.0.get(key.as_ref())?)
    }

    /// Sets `key` to `value`, replacing any value it had.
    pub fn set(&self, key: impl AsRef<str>, value: impl AsRef<[u8]>) -> Result<(), Error> {
        Ok(self.0.set(key.as_ref(), value.as_ref())?)
    }

    /// Removes `key`; one that is not there is no error.
    pub fn delete(&self, key: impl AsRef<str>) -> Result<(), Error> {
        Ok(self.0.delete(key.as_ref())?)
    }

    /// Whether `key` has a value.
    pub fn exists(&self, key: impl AsRef<str>) -> Result<bool, Error> {
        Ok(self.0.exists(key.as_ref())?)
    }

    /// Every key in the store.
    pub fn get_keys(&self) -> Result<Vec<String>, Error> {
        Ok(self.0.get_keys()?)
    }

    /// The value at `key`, read as JSON into `T`.
    ///
    /// ```no_run
    /// # use spin_trigger_sdk::key_value::Store;
    /// #[derive(serde::Deserialize)]
    /// struct Cursor { last_id: u64 }
    /// let cursor: Option<Cursor> = Store::open_default()?.get_json("cursor")?;
    /// # Ok::<(), spin_trigger_sdk::key_value::Error>(())
    /// ```
    pub fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: impl AsRef<str>,
    ) -> Result<Option<T>, Error> {
        match self.get(key)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|error| Error::Json(error.to_string())),
            None => Ok(None),
        }
    }

    /// Sets `key` to `value` written as JSON.
    pub fn set_json<T: serde::Serialize>(
        &self,
        key: impl AsRef<str>,
        value: &T,
    ) -> Result<(), Error> {
        let bytes = serde_json::to_vec(value).map_err(|error| Error::Json(error.to_string()))?;
        self.set(key, bytes)
    }
}
