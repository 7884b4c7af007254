//! The sync run as a value: its statuses, triggers, the lifecycle state machine and the
//! validation rules for what a client may write, and the failure rules that tell why a run
//! failed and who can fix it. Pure logic: no I/O but reading a rules file.

mod connection;
mod failure_rules;
mod run;
mod status;
mod validate;

pub use connection::{ConnectionId, ConnectionKind, MAX_CONNECTION_ID_CHARS};
pub use failure_rules::{FailureRules, Owner, RulesError};
pub use run::{ConnectorStatus, NewSyncLog, SyncLog};
pub use status::{Action, Status, TransitionError, TriggerType};
pub use validate::{
    capped_error_text, validate_cloud_task, validate_connector_slug, validate_error_text,
    validate_metadata, ValidationError, MAX_ERROR_CHARS,
};
pub(crate) use validate::{MAX_CLOUD_TASK_ID_CHARS, MAX_METADATA_BYTES};
