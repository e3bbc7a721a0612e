//! When a job is retried and when it is given up: Redis's delivery counter is the attempt
//! number; an entry seen for the 4th time (its worker died or stalled three times) or failing
//! its 3rd attempt goes to the dead-letter stream. Pure, so the policy is tested on its own.

pub const MAX_DELIVERIES: usize = 3;

/// What to do with an entry delivered for the `attempt`th time, before running it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Admission {
    Run,
    /// Earlier attempts never finished (crash or timeout) and none are left.
    GiveUp,
}

pub(super) fn admit(attempt: usize) -> Admission {
    if attempt > MAX_DELIVERIES {
        Admission::GiveUp
    } else {
        Admission::Run
    }
}

/// What follows a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AfterFailure {
    /// The upload itself is unacceptable: the owner is told, the entry acknowledged.
    Refuse,
    /// That was the last attempt: the video fails and the entry goes to the dead letters.
    DeadLetter,
    /// The entry stays pending and is delivered again.
    Retry,
}

pub(super) fn after_failure(permanent: bool, attempt: usize) -> AfterFailure {
    if permanent {
        AfterFailure::Refuse
    } else if attempt >= MAX_DELIVERIES {
        AfterFailure::DeadLetter
    } else {
        AfterFailure::Retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_runs_for_its_first_three_deliveries_only() {
        assert_eq!(admit(1), Admission::Run);
        assert_eq!(admit(3), Admission::Run);
        assert_eq!(admit(4), Admission::GiveUp);
        assert_eq!(admit(9), Admission::GiveUp);
    }

    #[test]
    fn a_retryable_failure_is_retried_until_the_third_attempt() {
        assert_eq!(after_failure(false, 1), AfterFailure::Retry);
        assert_eq!(after_failure(false, 2), AfterFailure::Retry);
        assert_eq!(after_failure(false, 3), AfterFailure::DeadLetter);
        // A handed-back entry can come back with a higher counter; it is not retried either.
        assert_eq!(after_failure(false, 4), AfterFailure::DeadLetter);
    }

    #[test]
    fn a_refused_upload_is_never_retried_nor_dead_lettered() {
        for attempt in 1..=4 {
            assert_eq!(
                after_failure(true, attempt),
                AfterFailure::Refuse,
                "{attempt}"
            );
        }
    }
}
