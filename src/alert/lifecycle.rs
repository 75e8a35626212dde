//! The life of one alert, the same in the service and in the backtest: it opens when its
//! condition holds and no alert of the same (subject, rule) is open; it stays open, and is not
//! told again, while the condition holds; it resolves once the condition has been clear for
//! [`RESOLVE_AFTER`] evaluations in a row, and only then can it open again. An evaluation with
//! nothing to judge (no data that day) counts as clear.

/// Consecutive clear evaluations that resolve an open alert.
pub const RESOLVE_AFTER: u32 = 2;

/// What one evaluation does to a (subject, rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing was open and the condition holds: open (and notify).
    Open,
    /// Open, and the condition still holds (or holds again): the clear count goes back to 0.
    Hold,
    /// Open, the condition is clear: the clear count becomes the number given.
    Clearing(u32),
    /// Open, and clear for [`RESOLVE_AFTER`] evaluations: resolve.
    Resolve,
    /// Nothing open, nothing firing.
    Quiet,
}

/// The step for an alert whose open state is `open` (its clear count, `None` if not open)
/// when the condition `fired`.
pub fn step(open: Option<u32>, fired: bool) -> Step {
    match (open, fired) {
        (None, true) => Step::Open,
        (None, false) => Step::Quiet,
        (Some(_), true) => Step::Hold,
        (Some(c), false) if c + 1 >= RESOLVE_AFTER => Step::Resolve,
        (Some(c), false) => Step::Clearing(c + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a sequence of evaluations and returns the indexes where an alert opened.
    fn opens(fired: &[bool]) -> Vec<usize> {
        let mut open = None;
        let mut out = Vec::new();
        for (i, &f) in fired.iter().enumerate() {
            match step(open, f) {
                Step::Open => {
                    out.push(i);
                    open = Some(0);
                }
                Step::Hold => open = Some(0),
                Step::Clearing(c) => open = Some(c),
                Step::Resolve => open = None,
                Step::Quiet => {}
            }
        }
        out
    }

    #[test]
    fn an_event_opens_once_and_reopens_only_after_two_clear_evaluations() {
        assert_eq!(opens(&[true, true, true, true]), vec![0], "held: told once");
        assert_eq!(
            opens(&[true, false, true, false, false, true]),
            vec![0, 5],
            "one clear evaluation does not resolve; two do"
        );
        assert_eq!(opens(&[false, false]), Vec::<usize>::new());
    }
}
