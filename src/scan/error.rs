//! What a failed scan says: which limit was hit, or that the store is unreachable.

use std::time::Duration;

use crate::store::StoreError;

/// Why a scan failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(
        "a scanner query ran longer than --scan-statement-timeout and was cancelled (the \
         chunk size is already at its minimum; raise the timeout or add the scanner's \
         indexes): {0}"
    )]
    StatementTimeout(StoreError),
    #[error("the store is unreachable: {0}")]
    Unreachable(StoreError),
    #[error(transparent)]
    Store(StoreError),
    #[error("scan timed out after {0:?} (--scan-timeout)")]
    Timeout(Duration),
    #[error("{0}")]
    Lease(String),
}

impl From<StoreError> for ScanError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::StatementTimeout(_) => ScanError::StatementTimeout(e),
            StoreError::Unavailable(_) => ScanError::Unreachable(e),
            e => ScanError::Store(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_statement_names_the_flag_and_a_refused_connection_the_store() {
        let cut = ScanError::from(StoreError::StatementTimeout(sqlx::Error::Protocol(
            "canceling statement due to statement timeout".into(),
        )));
        assert!(
            cut.to_string().contains("--scan-statement-timeout"),
            "{cut}"
        );
        let refused = ScanError::from(StoreError::Unavailable(sqlx::Error::Io(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        )));
        assert!(
            refused.to_string().starts_with("the store is unreachable"),
            "{refused}"
        );
        let other = ScanError::from(StoreError::Corrupt("bad row".into()));
        assert!(matches!(other, ScanError::Store(_)));
        assert!(ScanError::Timeout(Duration::from_secs(30))
            .to_string()
            .contains("--scan-timeout"));
    }
}
