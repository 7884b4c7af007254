//! The run's statuses, triggers and the lifecycle's compare-and-set rules: which action is
//! allowed from which status.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a run is in its lifecycle: `scheduled → in_progress → success | error`, and
/// `scheduled → error` for a run that failed before it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Scheduled,
    InProgress,
    Success,
    Error,
}

impl Status {
    const ALL: [Status; 4] = [
        Status::Scheduled,
        Status::InProgress,
        Status::Success,
        Status::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Scheduled => "scheduled",
            Status::InProgress => "in_progress",
            Status::Success => "success",
            Status::Error => "error",
        }
    }

    /// Terminal rows never change status again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Success | Status::Error)
    }

    /// The statuses a run may be created in.
    pub fn is_initial(self) -> bool {
        matches!(self, Status::Scheduled | Status::InProgress)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status {s:?}; expected one of scheduled, in_progress, success, error"
                )
            })
    }
}

/// How a run was initiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerType {
    CloudTask,
    Manual,
    OauthCallback,
}

impl TriggerType {
    const ALL: [TriggerType; 3] = [
        TriggerType::CloudTask,
        TriggerType::Manual,
        TriggerType::OauthCallback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TriggerType::CloudTask => "cloud_task",
            TriggerType::Manual => "manual",
            TriggerType::OauthCallback => "oauth_callback",
        }
    }
}

impl fmt::Display for TriggerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TriggerType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TriggerType::ALL
            .into_iter()
            .find(|trigger| trigger.as_str() == s)
            .ok_or_else(|| {
                format!("unknown trigger_type {s:?}; expected one of cloud_task, manual, oauth_callback")
            })
    }
}

/// What a client asks of an existing run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Start,
    Heartbeat,
    Succeed,
    Fail,
}

impl Action {
    #[cfg(test)]
    const ALL: [Action; 4] = [
        Action::Start,
        Action::Heartbeat,
        Action::Succeed,
        Action::Fail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Heartbeat => "heartbeat",
            Action::Succeed => "succeed",
            Action::Fail => "fail",
        }
    }

    /// The statuses this action may be applied to. The stores use this list as the
    /// compare-and-set condition of their UPDATE, so the state machine has one source.
    pub fn allowed_from(self) -> &'static [Status] {
        match self {
            Action::Start => &[Status::Scheduled],
            Action::Heartbeat => &[Status::InProgress],
            Action::Succeed => &[Status::InProgress],
            Action::Fail => &[Status::Scheduled, Status::InProgress],
        }
    }

    /// The status after the action. A heartbeat keeps the run where it is.
    pub fn target(self) -> Status {
        match self {
            Action::Start => Status::InProgress,
            Action::Heartbeat => Status::InProgress,
            Action::Succeed => Status::Success,
            Action::Fail => Status::Error,
        }
    }

    /// Apply the action to a run in status `from`.
    pub fn apply(self, from: Status) -> Result<Status, TransitionError> {
        if self.allowed_from().contains(&from) {
            Ok(self.target())
        } else {
            Err(TransitionError {
                action: self,
                current: from,
            })
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a run whose status is {current}")]
pub struct TransitionError {
    pub action: Action,
    pub current: Status,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole table, written out by hand so a change to the rules shows up here.
    #[test]
    fn every_state_action_pair_has_the_documented_outcome() {
        use Action::*;
        use Status::*;
        let expected: [(Status, Action, Option<Status>); 16] = [
            (Scheduled, Start, Some(InProgress)),
            (Scheduled, Heartbeat, None),
            (Scheduled, Succeed, None),
            (Scheduled, Fail, Some(Error)),
            (InProgress, Start, None),
            (InProgress, Heartbeat, Some(InProgress)),
            (InProgress, Succeed, Some(Success)),
            (InProgress, Fail, Some(Error)),
            (Success, Start, None),
            (Success, Heartbeat, None),
            (Success, Succeed, None),
            (Success, Fail, None),
            (Error, Start, None),
            (Error, Heartbeat, None),
            (Error, Succeed, None),
            (Error, Fail, None),
        ];
        for (from, action, outcome) in expected {
            let got = action.apply(from);
            match outcome {
                Some(to) => assert_eq!(got, Ok(to), "{action} from {from}"),
                None => assert_eq!(
                    got,
                    Err(TransitionError {
                        action,
                        current: from
                    }),
                    "{action} from {from} must be refused"
                ),
            }
        }
    }

    #[test]
    fn terminal_statuses_accept_no_action() {
        for from in Status::ALL.into_iter().filter(|s| s.is_terminal()) {
            for action in Action::ALL {
                assert!(action.apply(from).is_err(), "{action} from {from}");
            }
        }
    }

    #[test]
    fn only_scheduled_and_in_progress_are_initial() {
        let initial: Vec<_> = Status::ALL.into_iter().filter(|s| s.is_initial()).collect();
        assert_eq!(initial, vec![Status::Scheduled, Status::InProgress]);
    }

    #[test]
    fn statuses_and_triggers_round_trip_through_text() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>(), Ok(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        for trigger in TriggerType::ALL {
            assert_eq!(trigger.as_str().parse::<TriggerType>(), Ok(trigger));
        }
        assert!("SUCCESS".parse::<Status>().is_err());
        assert!("cron".parse::<TriggerType>().is_err());
    }

    #[test]
    fn transition_error_names_the_current_status() {
        let err = Action::Succeed.apply(Status::Error).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot succeed a run whose status is error"
        );
    }
}
