//! Input validation shared by the API and the store: connector slugs, `cloud_task_id`,
//! metadata objects and error texts, each with the limit it enforces.

use serde_json::{Map, Value};

use super::TriggerType;

pub const MAX_CLOUD_TASK_ID_CHARS: usize = 255;
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
pub const MAX_CONNECTOR_SLUG_CHARS: usize = 64;
/// The largest `metadata.records_synced` counted (2^53, the last integer a float holds
/// exactly); the SQL that reads other writers' rows ignores larger ones the same way.
pub const MAX_RECORDS_SYNCED: f64 = 9_007_199_254_740_992.0;
/// The most characters of a failed run's error text that are stored.
pub const MAX_ERROR_CHARS: usize = 8192;

/// A value a client sent that the domain rejects. `field` names the JSON field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// `connector_slug` is the metric label, so it is held to `[a-z0-9][a-z0-9_-]{0,63}`.
pub fn validate_connector_slug(slug: &str) -> Result<(), ValidationError> {
    let bytes = slug.as_bytes();
    let head_ok = bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
    if head_ok && rest_ok && bytes.len() <= MAX_CONNECTOR_SLUG_CHARS {
        Ok(())
    } else {
        Err(ValidationError::new(
            "connector_slug",
            "must match [a-z0-9][a-z0-9_-]{0,63}",
        ))
    }
}

/// `cloud_task_id` belongs to `cloud_task` triggers only and is at most 255 characters.
pub fn validate_cloud_task(
    trigger: Option<TriggerType>,
    cloud_task_id: Option<&str>,
) -> Result<(), ValidationError> {
    let Some(id) = cloud_task_id else {
        return Ok(());
    };
    if trigger != Some(TriggerType::CloudTask) {
        return Err(ValidationError::new(
            "cloud_task_id",
            "is only allowed with trigger_type cloud_task",
        ));
    }
    if id.is_empty() {
        return Err(ValidationError::new("cloud_task_id", "must not be empty"));
    }
    if id.contains('\0') {
        return Err(ValidationError::new(
            "cloud_task_id",
            "must not contain the character U+0000",
        ));
    }
    if id.chars().count() > MAX_CLOUD_TASK_ID_CHARS {
        return Err(ValidationError::new(
            "cloud_task_id",
            format!("must be at most {MAX_CLOUD_TASK_ID_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Metadata is a JSON object of at most 64 KiB (serialized).
pub fn validate_metadata(metadata: &Value) -> Result<&Map<String, Value>, ValidationError> {
    let Value::Object(map) = metadata else {
        return Err(ValidationError::new("metadata", "must be a JSON object"));
    };
    let size = serde_json::to_vec(metadata).map_or(usize::MAX, |v| v.len());
    if size > MAX_METADATA_BYTES {
        return Err(ValidationError::new(
            "metadata",
            format!("is {size} bytes; at most {MAX_METADATA_BYTES} are allowed"),
        ));
    }
    if let Some(Value::Number(n)) = map.get("records_synced") {
        // Counted into `connector_sync_records_synced_total`: a number no sync reaches
        // would freeze that counter (adding 1 to 1e300 changes nothing).
        // An integer is compared exactly (2^53 + 1 would read as 2^53 as a float). A number
        // written with a fraction or exponent is a float already, its text gone: above 2^52
        // a float cannot hold every half, so `2^53 + 0.5` would be stored as 2^53; such a
        // number must be below 2^52, where what is stored is what was meant.
        let fits = match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(whole), _, _) => whole <= 1 << 53,
            (None, Some(_), _) => false,
            (None, None, Some(x)) => (0.0..MAX_RECORDS_SYNCED / 2.0).contains(&x),
            (None, None, None) => false,
        };
        if !fits {
            return Err(ValidationError::new(
                "metadata.records_synced",
                format!(
                    "must be a whole number from 0 to {MAX_RECORDS_SYNCED} (2^53), or a \
                     number with a fraction below 2^52"
                ),
            ));
        }
    }
    if contains_nul(metadata) {
        // Postgres cannot store U+0000 in jsonb text; refuse it on both stores alike.
        return Err(ValidationError::new(
            "metadata",
            "must not contain the character U+0000",
        ));
    }
    Ok(map)
}

/// A failed run needs a human-readable error text.
pub fn validate_error_text(error: &str) -> Result<(), ValidationError> {
    if error.trim().is_empty() {
        return Err(ValidationError::new("error", "must be a non-empty text"));
    }
    if error.contains('\0') {
        return Err(ValidationError::new(
            "error",
            "must not contain the character U+0000",
        ));
    }
    Ok(())
}

/// A failed run's error text as stored: at most [`MAX_ERROR_CHARS`] characters. A longer
/// text keeps its start and says how long it was (the failure is recorded either way: a
/// refused `fail` would leave the run in progress).
pub fn capped_error_text(error: String) -> String {
    let total = error.chars().count();
    if total <= MAX_ERROR_CHARS {
        return error;
    }
    let marker = format!(" … [cut: {total} characters in all]");
    let keep = MAX_ERROR_CHARS - marker.chars().count();
    let mut capped: String = error.chars().take(keep).collect();
    capped.push_str(&marker);
    capped
}

fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn connector_slugs_follow_the_label_pattern() {
        for ok in ["hubspot", "a", "0", "google_ads-v2", &"a".repeat(64)] {
            assert_eq!(validate_connector_slug(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "HubSpot",
            "-hubspot",
            "_x",
            "hub spot",
            "hubspot;drop",
            "héllo",
            &"a".repeat(65),
        ] {
            assert!(validate_connector_slug(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cloud_task_id_needs_the_cloud_task_trigger_and_at_most_255_chars() {
        let ct = Some(TriggerType::CloudTask);
        assert_eq!(
            validate_cloud_task(ct, Some("projects/p/queues/q/tasks/1")),
            Ok(())
        );
        assert_eq!(validate_cloud_task(None, None), Ok(()));
        assert_eq!(validate_cloud_task(ct, Some(&"é".repeat(255))), Ok(()));
        assert!(validate_cloud_task(ct, Some(&"x".repeat(256))).is_err());
        assert!(validate_cloud_task(ct, Some("")).is_err());
        assert!(validate_cloud_task(Some(TriggerType::Manual), Some("t")).is_err());
        assert!(validate_cloud_task(None, Some("t")).is_err());
    }

    #[test]
    fn metadata_must_be_a_small_object() {
        assert!(validate_metadata(&json!({"records_synced": 3})).is_ok());
        assert!(validate_metadata(&json!([1, 2])).is_err());
        assert!(validate_metadata(&json!("x")).is_err());
        assert!(validate_metadata(&json!(null)).is_err());
        let big = json!({ "blob": "x".repeat(MAX_METADATA_BYTES) });
        assert!(validate_metadata(&big).is_err());
        let just_fits = json!({ "b": "x".repeat(MAX_METADATA_BYTES - 10) });
        assert!(validate_metadata(&just_fits).is_ok());
        assert!(validate_metadata(&json!({"a": {"b": ["\u{0}"]}})).is_err());
        for absurd in [
            json!(1e300),
            json!(-1),
            json!(9_007_199_254_740_993.0_f64 * 2.0),
            // 2^53 + 1 exactly, and 2^53 + 0.5 (parsed as the float 2^53).
            serde_json::from_str::<Value>("9007199254740993").unwrap(),
            serde_json::from_str::<Value>("9007199254740992.5").unwrap(),
        ] {
            assert!(validate_metadata(&json!({ "records_synced": absurd })).is_err());
        }
        for fine in [
            json!(0),
            json!(1200),
            json!(9_007_199_254_740_992_u64),
            json!(12.5),
            json!("n/a"),
        ] {
            assert!(validate_metadata(&json!({ "records_synced": fine })).is_ok());
        }
    }

    #[test]
    fn long_error_texts_are_cut_to_the_cap_saying_how_long_they_were() {
        let short = "é".repeat(MAX_ERROR_CHARS);
        assert_eq!(capped_error_text(short.clone()), short);
        let long = format!("{}tail", "é".repeat(MAX_ERROR_CHARS));
        let capped = capped_error_text(long);
        assert_eq!(capped.chars().count(), MAX_ERROR_CHARS);
        assert!(capped.starts_with("éé"));
        assert!(
            capped.ends_with(&format!("[cut: {} characters in all]", MAX_ERROR_CHARS + 4)),
            "{}",
            &capped[capped.len() - 60..]
        );
    }

    #[test]
    fn error_text_must_be_present() {
        assert!(validate_error_text("timeout after 30s").is_ok());
        assert!(validate_error_text("  ").is_err());
        assert!(validate_error_text("").is_err());
    }
}
