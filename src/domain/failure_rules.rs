//! Why a run failed: an ordered list of rules, each a case-insensitive regular expression
//! over the run's `error` text, a `reason` (the label value) and the `owner` who can fix it.
//! The first matching rule wins; `other` when none matches, `none` when `error` is null.
//! Built-in defaults, or an operator's YAML file (`--failure-rules`). Pure: no I/O but
//! reading that file, unit-tested.

use std::fmt;
use std::path::Path;

use regex::{Regex, RegexBuilder};
use sha2::{Digest, Sha256};

/// The reason of a failure no rule matches.
pub const OTHER_REASON: &str = "other";
/// The reason of a failure without an `error` text.
pub const NO_ERROR_REASON: &str = "none";

/// Characters of `error` the rules see: the SQL aggregates group failed runs by the same
/// prefix, so a run is classified the same way whichever read counts it.
pub const CLASSIFIED_CHARS: usize = crate::store::ERROR_PREFIX_CHARS;

/// Most rules a file may hold: reasons are labels, a small set chosen by the operator.
const MAX_RULES: usize = 64;

/// Who can fix a failure: the alerts page for `provider` and `platform`, not `customer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Owner {
    Customer,
    Provider,
    Platform,
}

impl Owner {
    pub fn as_str(self) -> &'static str {
        match self {
            Owner::Customer => "customer",
            Owner::Provider => "provider",
            Owner::Platform => "platform",
        }
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule as written in the file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    reason: String,
    owner: Owner,
    pattern: String,
}

#[derive(Debug, Clone)]
struct Rule {
    reason: String,
    owner: Owner,
    pattern: Regex,
}

/// The ordered rules, and the reasons they can produce with their owners.
#[derive(Debug, Clone)]
pub struct FailureRules {
    rules: Vec<Rule>,
    /// Every reason with its owner, in first-appearance order, `other` and `none` last.
    reasons: Vec<(String, Owner)>,
    /// Identifies the rules: totals counted with other rules are not continued.
    digest: String,
}

/// The built-in rules, in the file format.
pub const BUILTIN_RULES: &str = r#"# reason: the label value; owner: customer, provider or platform; pattern: a
# case-insensitive regular expression over the run's error text. First match wins.
- reason: auth
  owner: customer
  pattern: '\b40[13]\b|unauthori[sz]ed|forbidden|(token|grant|credentials?)\W+(\w+\W+){0,3}(revoked|expired|invalid)|(revoked|expired|invalid)\W+(\w+\W+){0,2}(token|grant|credentials?)|invalid_grant|invalid_token'
- reason: rate_limit
  owner: provider
  pattern: '\b429\b|rate[ _-]?limit|too many requests|quota'
- reason: timeout
  owner: provider
  pattern: 'timed?[ _-]?out|deadline exceeded'
- reason: upstream_unavailable
  owner: provider
  pattern: '\b(http|status|code|error)\W{0,3}5\d\d\b|\b50[0-4] (internal|bad|service|gateway|server)|service unavailable|bad gateway|internal server error'
- reason: network
  owner: platform
  pattern: 'connection (reset|refused|closed|aborted)|econn(reset|refused)|broken pipe|dns|name resolution|getaddrinfo|enotfound|no route to host|network is unreachable'
- reason: invalid_data
  owner: platform
  pattern: 'schema|validation|validate|parse|parsing|mismatch|unexpected (token|field|type)|deserializ'
"#;

/// A rules file that cannot be used: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError {
    pub source: String,
    pub line: Option<usize>,
    pub reason: String,
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.source, self.reason),
            None => write!(f, "{}: {}", self.source, self.reason),
        }
    }
}

impl std::error::Error for RulesError {}

impl PartialEq for FailureRules {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
    }
}

impl Default for FailureRules {
    fn default() -> Self {
        Self::parse(BUILTIN_RULES, "built-in failure rules").expect("the built-in rules are valid")
    }
}

impl FailureRules {
    /// Read and check a rules file.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RulesError {
            source: source.clone(),
            line: None,
            reason: format!("cannot read it: {e}"),
        })?;
        Self::parse(&text, &source)
    }

    /// Parse rules in the file format; `source` names the text in errors.
    fn parse(text: &str, source: &str) -> Result<Self, RulesError> {
        let error = |line: Option<usize>, reason: String| RulesError {
            source: source.to_owned(),
            line,
            reason,
        };
        let texts: Vec<RuleText> = serde_yaml_ng::from_str(text).map_err(|e| {
            error(
                e.location().map(|l| l.line()),
                format!("not a list of {{reason, owner, pattern}}: {e}"),
            )
        })?;
        if texts.len() > MAX_RULES {
            return Err(error(None, format!("more than {MAX_RULES} rules")));
        }
        if texts.is_empty() {
            // A mistake (a wrong path, a truncated deploy): without the flag, built-ins.
            return Err(error(None, "no rules: give one, or drop the flag".into()));
        }
        let lines = item_lines(text);
        let mut rules = Vec::new();
        let mut reasons: Vec<(String, Owner)> = Vec::new();
        for (i, rule) in texts.into_iter().enumerate() {
            let line = lines.get(i).copied();
            if !valid_reason(&rule.reason) {
                return Err(error(
                    line,
                    format!(
                        "reason {:?}: a reason is [a-z][a-z0-9_]{{0,31}}, and `{OTHER_REASON}` \
                         and `{NO_ERROR_REASON}` are reserved",
                        rule.reason
                    ),
                ));
            }
            match reasons.iter().find(|(r, _)| *r == rule.reason) {
                Some((_, owner)) if *owner != rule.owner => {
                    return Err(error(
                        line,
                        format!(
                            "reason {} has owner {owner} in an earlier rule and {} here",
                            rule.reason, rule.owner
                        ),
                    ))
                }
                Some(_) => {}
                None => reasons.push((rule.reason.clone(), rule.owner)),
            }
            if rule.pattern.trim().is_empty() {
                let empty = format!(
                    "pattern of {} is empty: it matches every error",
                    rule.reason
                );
                return Err(error(line, empty));
            }
            let pattern = RegexBuilder::new(&rule.pattern)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| error(line, format!("pattern of {}: {e}", rule.reason)))?;
            rules.push(Rule {
                reason: rule.reason,
                owner: rule.owner,
                pattern,
            });
        }
        // A failure nobody recognised, or without a message, is the platform's to look at.
        reasons.push((OTHER_REASON.into(), Owner::Platform));
        reasons.push((NO_ERROR_REASON.into(), Owner::Platform));
        let mut hash = Sha256::new();
        for rule in &rules {
            hash.update(format!(
                "{}\0{}\0{}\n",
                rule.reason,
                rule.owner,
                rule.pattern.as_str()
            ));
        }
        let digest = hash
            .finalize()
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            rules,
            reasons,
            digest,
        })
    }

    /// The reason of a failure with this `error` text.
    pub fn classify(&self, error: Option<&str>) -> &str {
        let Some(error) = error else {
            return NO_ERROR_REASON;
        };
        let end = error
            .char_indices()
            .nth(CLASSIFIED_CHARS)
            .map_or(error.len(), |(i, _)| i);
        let text = &error[..end];
        self.rules
            .iter()
            .find(|rule| rule.pattern.is_match(text))
            .map_or(OTHER_REASON, |rule| rule.reason.as_str())
    }

    /// Every reason these rules produce, with its owner.
    pub fn reasons(&self) -> &[(String, Owner)] {
        &self.reasons
    }

    /// The owner of `reason` (`platform` for a reason these rules do not know).
    pub fn owner(&self, reason: &str) -> Owner {
        self.reasons
            .iter()
            .find(|(r, _)| r == reason)
            .map_or(Owner::Platform, |(_, owner)| *owner)
    }

    /// Identifies the rules: totals saved under other rules are rebuilt, not continued.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The rules as `(reason, owner, pattern)`, in order.
    pub fn describe(&self) -> impl Iterator<Item = (&str, Owner, &str)> {
        self.rules
            .iter()
            .map(|r| (r.reason.as_str(), r.owner, r.pattern.as_str()))
    }
}

fn valid_reason(reason: &str) -> bool {
    let bytes = reason.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_lowercase)
        && bytes.len() <= 32
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
        && reason != OTHER_REASON
        && reason != NO_ERROR_REASON
}

/// The 1-based line on which each top-level list item starts (`- ` at column 0).
fn item_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("- ") || *l == "-")
        .map(|(i, _)| i + 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_rules_classify_the_usual_failures() {
        let rules = FailureRules::default();
        for (error, reason) in [
            ("HTTP 401 Unauthorized", "auth"),
            ("403 Forbidden: missing scope crm.objects.read", "auth"),
            ("OAuth token has been revoked by the user", "auth"),
            ("refresh failed: invalid_grant", "auth"),
            ("access token expired", "auth"),
            ("HTTP 429 Too Many Requests", "rate_limit"),
            ("daily API quota exhausted", "rate_limit"),
            ("Rate limit reached, retry after 30s", "rate_limit"),
            ("request timed out after 30000ms", "timeout"),
            ("context deadline exceeded", "timeout"),
            ("upstream returned status 503", "upstream_unavailable"),
            ("502 Bad Gateway", "upstream_unavailable"),
            ("Service Unavailable", "upstream_unavailable"),
            ("read ECONNRESET", "network"),
            ("connection refused (os error 111)", "network"),
            ("getaddrinfo ENOTFOUND api.hubspot.com", "network"),
            ("write: broken pipe", "network"),
            ("failed to parse response body", "invalid_data"),
            ("schema mismatch on field amount", "invalid_data"),
            ("processed 500 records then panicked", "other"),
            ("", "other"),
        ] {
            assert_eq!(rules.classify(Some(error)), reason, "{error:?}");
        }
        assert_eq!(rules.classify(None), "none");
        assert_eq!(rules.owner("auth"), Owner::Customer);
        assert_eq!(rules.owner("rate_limit"), Owner::Provider);
        assert_eq!(rules.owner("other"), Owner::Platform);
        assert_eq!(rules.reasons().len(), 8);
    }

    #[test]
    fn the_first_matching_rule_wins_and_only_the_prefix_is_read() {
        let rules = FailureRules::parse(
            "- {reason: a, owner: customer, pattern: 'x'}\n- {reason: b, owner: platform, pattern: 'x|y'}\n",
            "t",
        )
        .unwrap();
        assert_eq!(rules.classify(Some("xy")), "a");
        assert_eq!(rules.classify(Some("Y")), "b", "case-insensitive");
        let late = format!("{}x", "é".repeat(CLASSIFIED_CHARS));
        assert_eq!(rules.classify(Some(&late)), "other");
        let early = format!("{}x", "é".repeat(CLASSIFIED_CHARS - 1));
        assert_eq!(rules.classify(Some(&early)), "a");
    }

    #[test]
    fn a_bad_file_says_where_and_why() {
        let text = "- reason: auth\n  owner: customer\n  pattern: '401'\n- reason: broken\n  owner: platform\n  pattern: '(unclosed'\n";
        let err = FailureRules::parse(text, "rules.yml").unwrap_err();
        assert_eq!(err.line, Some(4));
        assert!(
            err.to_string()
                .starts_with("rules.yml:4: pattern of broken"),
            "{err}"
        );
        let err =
            FailureRules::parse("- reason: x\n  owner: nobody\n  pattern: a\n", "r").unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
        let err = FailureRules::parse("- {reason: other, owner: customer, pattern: a}\n", "r")
            .unwrap_err();
        assert!(err.reason.contains("reserved"), "{err}");
        let err = FailureRules::parse(
            "- {reason: a, owner: customer, pattern: x}\n- {reason: a, owner: platform, pattern: y}\n",
            "r",
        )
        .unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(FailureRules::parse("reason: a", "r").is_err(), "not a list");
        for nothing in ["", "[]", "# a comment\n"] {
            assert!(FailureRules::parse(nothing, "r").is_err(), "{nothing:?}");
        }
        let err = FailureRules::parse("- {reason: a, owner: customer, pattern: ' '}", "r");
        assert!(err.unwrap_err().to_string().ends_with("every error"));
    }

    #[test]
    fn the_digest_follows_the_rules() {
        let a = FailureRules::parse("- {reason: a, owner: customer, pattern: x}\n", "r").unwrap();
        let b = FailureRules::parse("- {reason: a, owner: customer, pattern: y}\n", "r").unwrap();
        assert_ne!(a.digest(), b.digest());
        assert_eq!(
            a.digest(),
            FailureRules::parse("- {reason: a, owner: customer, pattern: x}\n", "r")
                .unwrap()
                .digest()
        );
    }
}
