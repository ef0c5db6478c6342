//! What a guest's SQL may do on a connection of its database: reach that database and nothing
//! else (no `ATTACH`, `VACUUM INTO` or extension loading, no `PRAGMA` that reaches past the
//! database or changes how it is stored), end at the handler's deadline, and leave nothing behind
//! for the next instance that gets the pooled connection.
//!
//! SQLite asks an authorizer about every action while it prepares a statement; ours refuses
//! what reaches past the database, and notes what would outlive the instance (a `TEMP` object,
//! a connection setting) so that the connection is closed instead of pooled. A progress handler
//! interrupts a statement once the call's deadline has passed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use rusqlite::Connection;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;

use crate::live::lock;

/// Virtual-machine steps between two looks at the deadline: an `Instant::now()` every thousand
/// steps costs nothing measurable, and a statement stops within microseconds of its deadline.
const STEPS_BETWEEN_DEADLINE_CHECKS: i32 = 1_000;

/// Pragmas whose value is an argument (a table or index name), not a setting: always allowed.
const QUERY_PRAGMAS: &[&str] = &[
    "foreign_key_check",
    "foreign_key_list",
    "index_info",
    "index_list",
    "index_xinfo",
    "integrity_check",
    "quick_check",
    "table_info",
    "table_list",
    "table_xinfo",
    "optimize",
];

/// Pragmas that set something stored in the database file itself: the guest's own to change.
const DATABASE_PRAGMAS: &[&str] = &["application_id", "user_version"];

/// Pragmas that set something of the connection a guest may want (`PRAGMA foreign_keys = ON`):
/// allowed, and the connection is not pooled afterwards, so the setting dies with the instance.
const CONNECTION_PRAGMAS: &[&str] = &[
    "defer_foreign_keys",
    "foreign_keys",
    "ignore_check_constraints",
    "recursive_triggers",
];

/// Pragmas a guest may read but not set: the host decides how the file is stored and shared.
const READ_ONLY_PRAGMAS: &[&str] = &[
    "auto_vacuum",
    "busy_timeout",
    "cache_size",
    "collation_list",
    "compile_options",
    "data_version",
    "database_list",
    "encoding",
    "freelist_count",
    "function_list",
    "journal_mode",
    "max_page_count",
    "module_list",
    "page_count",
    "page_size",
    "pragma_list",
    "query_only",
    "schema_version",
    "secure_delete",
    "synchronous",
    "temp_store",
];

/// One guest connection's guard: the deadline of the call it runs, whether it may go back to
/// the pool, and why the last refused action was refused.
#[derive(Debug, Default)]
pub(super) struct Guard {
    /// Milliseconds after [`base`] when the running call must end; `u64::MAX`: none.
    deadline: AtomicU64,
    /// Something the guest did would outlive its instance on this connection.
    tainted: AtomicBool,
    /// What the authorizer refused last, for the guest's error message.
    refused: Mutex<Option<String>>,
}

/// The instant deadlines are counted from.
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// Whole milliseconds from [`base`] to `instant`, rounded up: a deadline is never taken to pass
/// before it does.
fn millis_since_base(instant: Instant) -> u64 {
    let nanos = instant.saturating_duration_since(base()).as_nanos();
    u64::try_from(nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

impl Guard {
    /// Sets the deadline of the call about to run.
    pub(super) fn set_deadline(&self, deadline: Instant) {
        self.deadline
            .store(millis_since_base(deadline).max(1), Ordering::Relaxed);
        lock(&self.refused).take();
    }

    /// Whether the running call's deadline has passed.
    pub(super) fn deadline_passed(&self) -> bool {
        let now = Instant::now().saturating_duration_since(base()).as_millis();
        u64::try_from(now).unwrap_or(u64::MAX) >= self.deadline.load(Ordering::Relaxed)
    }

    /// Whether the connection may serve another instance.
    pub(super) fn reusable(&self) -> bool {
        !self.tainted.load(Ordering::Relaxed)
    }

    /// Why the authorizer refused the statement that just failed, if it did.
    pub(super) fn refusal(&self) -> Option<String> {
        lock(&self.refused).clone()
    }

    fn refuse(&self, why: String) -> Authorization {
        *lock(&self.refused) = Some(why);
        Authorization::Deny
    }

    /// SQLite's question about one action of a statement being prepared.
    fn authorize(&self, context: AuthContext<'_>) -> Authorization {
        match context.action {
            AuthAction::Attach { .. } | AuthAction::Detach { .. } => self.refuse(
                "ATTACH and DETACH are not allowed: a component reaches only the databases its \
                 sqlite_databases lists, each through a connection of its own"
                    .into(),
            ),
            AuthAction::Function { function_name }
                if function_name.eq_ignore_ascii_case("load_extension") =>
            {
                self.refuse("loading SQLite extensions is not allowed".into())
            }
            AuthAction::Pragma {
                pragma_name,
                pragma_value,
            } => self.authorize_pragma(pragma_name, pragma_value),
            AuthAction::CreateTempIndex { .. }
            | AuthAction::CreateTempTable { .. }
            | AuthAction::CreateTempTrigger { .. }
            | AuthAction::CreateTempView { .. } => {
                self.tainted.store(true, Ordering::Relaxed);
                Authorization::Allow
            }
            AuthAction::CreateVtable { .. } if context.database_name == Some("temp") => {
                self.tainted.store(true, Ordering::Relaxed);
                Authorization::Allow
            }
            AuthAction::Unknown { code, .. } => {
                self.refuse(format!("SQLite action {code} is not allowed"))
            }
            _ => Authorization::Allow,
        }
    }

    fn authorize_pragma(&self, name: &str, value: Option<&str>) -> Authorization {
        let name = name.to_ascii_lowercase();
        let listed = |list: &[&str]| list.contains(&name.as_str());
        if listed(QUERY_PRAGMAS) || listed(DATABASE_PRAGMAS) {
            return Authorization::Allow;
        }
        if listed(CONNECTION_PRAGMAS) {
            if value.is_some() {
                self.tainted.store(true, Ordering::Relaxed);
            }
            return Authorization::Allow;
        }
        if listed(READ_ONLY_PRAGMAS) && value.is_none() {
            return Authorization::Allow;
        }
        if listed(READ_ONLY_PRAGMAS) {
            return self.refuse(format!(
                "PRAGMA {name} may be read but not set: the host decides how the database is \
                 stored and shared"
            ));
        }
        self.refuse(format!(
            "PRAGMA {name} is not allowed; a component may use PRAGMA {}, read {}, and set {}",
            [QUERY_PRAGMAS, DATABASE_PRAGMAS].concat().join(", "),
            READ_ONLY_PRAGMAS.join(", "),
            CONNECTION_PRAGMAS.join(", ")
        ))
    }
}

/// Confines `connection` to its database for a guest: the authorizer, the deadline's progress
/// handler, SQLite's defensive mode (no writing to the schema table or shadow tables) and no
/// attached databases at all (so not even `VACUUM INTO` can create a file).
pub(super) fn confine(connection: &mut Connection) -> rusqlite::Result<Arc<Guard>> {
    use rusqlite::config::DbConfig;
    let guard = Arc::new(Guard::default());
    connection.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    connection.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    connection.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0)?;
    let authorizer = guard.clone();
    connection.authorizer(Some(move |context: AuthContext<'_>| {
        authorizer.authorize(context)
    }))?;
    let deadline = guard.clone();
    connection.progress_handler(
        STEPS_BETWEEN_DEADLINE_CHECKS,
        Some(move || deadline.deadline_passed()),
    )?;
    Ok(guard)
}
