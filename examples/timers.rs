//! A timer wheel with one-shot and periodic timers whose deadlines are
//! relative to a monotonic clock. The clock is process state: a deadline
//! means nothing in another process, so timers are saved as the time
//! *remaining* (for periodic ones that is their phase within the period),
//! refreshed by a `before_save` hook, and re-armed by `after_load` against
//! the restoring process's clock, taken from `Resources`.

use std::cell::Cell;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stateify::{AfterLoad, BeforeSave, Error, LoadContext, Stateify};

/// A monotonic clock: time since some origin of its own.
pub trait Clock: Send + Sync {
    fn now(&self) -> Duration;
}

/// The process's monotonic clock.
pub struct SystemClock(Instant);

impl SystemClock {
    pub fn shared() -> Arc<dyn Clock> {
        Arc::new(SystemClock(Instant::now()))
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// A clock that moves only when told to (tests).
#[derive(Default)]
pub struct FakeClock(Mutex<Duration>);

impl FakeClock {
    pub fn starting_at(t: Duration) -> Arc<FakeClock> {
        Arc::new(FakeClock(Mutex::new(t)))
    }

    pub fn advance(&self, d: Duration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += d;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Duration {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The resource `after_load` needs: the restoring process's clock.
pub struct ClockResource(pub Arc<dyn Clock>);

/// One timer.
#[derive(Debug, Stateify)]
pub struct Timer {
    pub name: String,
    /// `None`: one-shot.
    pub period: Option<Duration>,
    /// Time left until it fires, as of the last save.
    pub remaining: Cell<Duration>,
    pub fired: Cell<u64>,
    /// Fired for good (one-shot).
    pub done: Cell<bool>,
    /// When it fires, on this process's clock.
    #[state(nosave)]
    pub deadline: Cell<Duration>,
}

/// The wheel: timers plus the clock they run against.
#[derive(Stateify)]
#[state(after_load, before_save)]
pub struct TimerWheel {
    pub timers: Vec<Timer>,
    #[state(nosave)]
    pub clock: Option<Arc<dyn Clock>>,
}

impl TimerWheel {
    pub fn new(clock: Arc<dyn Clock>) -> TimerWheel {
        TimerWheel {
            timers: Vec::new(),
            clock: Some(clock),
        }
    }

    fn now(&self) -> Duration {
        self.clock.as_ref().map_or(Duration::ZERO, |c| c.now())
    }

    fn add(&mut self, name: &str, after: Duration, period: Option<Duration>) {
        let deadline = self.now() + after;
        self.timers.push(Timer {
            name: name.into(),
            period,
            remaining: Cell::new(after),
            fired: Cell::new(0),
            done: Cell::new(false),
            deadline: Cell::new(deadline),
        });
    }

    /// A timer that fires once, `after` from now.
    pub fn oneshot(&mut self, name: &str, after: Duration) {
        self.add(name, after, None);
    }

    /// A timer that fires every `period`, first one period from now.
    pub fn periodic(&mut self, name: &str, period: Duration) {
        self.add(name, period, Some(period));
    }

    /// Fires every timer whose deadline has passed: a periodic one as many
    /// times as periods went by. Returns the names fired (with repeats).
    pub fn poll(&self) -> Vec<String> {
        let now = self.now();
        let mut fired = Vec::new();
        for t in self.timers.iter().filter(|t| !t.done.get()) {
            while t.deadline.get() <= now {
                fired.push(t.name.clone());
                t.fired.set(t.fired.get() + 1);
                match t.period {
                    Some(p) if !p.is_zero() => t.deadline.set(t.deadline.get() + p),
                    _ => {
                        t.done.set(true);
                        break;
                    }
                }
            }
        }
        fired
    }

    /// Time left until `name` fires next (None once a one-shot has fired).
    pub fn remaining(&self, name: &str) -> Option<Duration> {
        let now = self.now();
        self.timers
            .iter()
            .find(|t| t.name == name && !t.done.get())
            .map(|t| t.deadline.get().saturating_sub(now))
    }
}

impl BeforeSave for TimerWheel {
    fn before_save(&self) -> Result<(), Error> {
        let now = self.now();
        for t in &self.timers {
            t.remaining.set(t.deadline.get().saturating_sub(now));
        }
        Ok(())
    }
}

impl AfterLoad for TimerWheel {
    fn after_load(&mut self, cx: &mut LoadContext) -> Result<(), Error> {
        let clock = cx
            .resource::<ClockResource>()
            .ok_or_else(|| Error::custom("timers need a ClockResource to be re-armed"))?
            .0
            .clone();
        let now = clock.now();
        for t in &self.timers {
            t.deadline.set(now + t.remaining.get());
        }
        self.clock = Some(clock);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn timers_keep_their_remaining_time_across_clocks() {
        let saving = FakeClock::starting_at(1000 * MS);
        let mut w = TimerWheel::new(saving.clone());
        w.oneshot("once", 300 * MS);
        w.periodic("tick", 100 * MS);
        saving.advance(250 * MS);
        assert_eq!(w.poll(), vec!["tick", "tick"]);
        let bytes = stateify::to_vec(&w).unwrap();

        // Another process: its clock reads something else entirely.
        let restoring = FakeClock::starting_at(7 * MS);
        let mut res = stateify::Resources::new();
        res.insert(ClockResource(restoring.clone()));
        let back: TimerWheel =
            stateify::from_slice_with_options(&bytes, &mut res, &Default::default())
                .unwrap()
                .0;
        assert_eq!(back.remaining("once"), Some(50 * MS));
        assert_eq!(back.remaining("tick"), Some(50 * MS), "the phase is kept");
        restoring.advance(49 * MS);
        assert!(back.poll().is_empty());
        restoring.advance(MS);
        assert_eq!(back.poll(), vec!["once", "tick"]);
        restoring.advance(200 * MS);
        assert_eq!(back.poll(), vec!["tick", "tick"]);
        assert_eq!(back.remaining("once"), None);
        assert_eq!(back.timers[1].fired.get(), 5);
    }

    #[test]
    fn a_missing_clock_is_an_error() {
        let w = TimerWheel::new(FakeClock::starting_at(MS));
        let bytes = stateify::to_vec(&w).unwrap();
        let err = stateify::from_slice::<TimerWheel>(&bytes).err().unwrap();
        assert!(err.to_string().contains("ClockResource"), "{err}");
    }
}
