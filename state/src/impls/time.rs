//! Time: `Duration`, `SystemTime` and `Instant`.
//!
//! - `Duration` is `Duration { secs: u64, nanos: u32 }`.
//! - `SystemTime` is the wall-clock time itself, `SystemTime { secs: i64,
//!   nanos: u32 }` since the Unix epoch (`secs` negative before it, `nanos`
//!   always counting forward), so it means the same moment on every host.
//! - `Instant` has no meaning outside the process that took it (it counts
//!   from an unspecified point, often the host's boot). Like gVisor's
//!   monotonic clocks, it is saved relative to the checkpoint:
//!   `Instant { nanos_from_save: i128 }`, its distance from the save's
//!   [`Saver::now`], and loads as the loader's [`Loader::now`] plus that
//!   distance. A deadline 5 s ahead at save is 5 s ahead after restore; a
//!   start time 1 h back is still 1 h back, even on a host booted since.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::load_pair;
use crate::error::{Error, Result};
use crate::{Loader, Saver, Stateify};

const DURATION_FIELDS: &[&str] = &["secs", "nanos"];

impl Stateify for Duration {
    fn save(&self, s: &mut Saver) -> Result<()> {
        s.save_struct("Duration", DURATION_FIELDS, |s| {
            s.field("secs", &self.as_secs())?;
            s.field("nanos", &self.subsec_nanos())
        })
    }
    fn load(l: &mut Loader) -> Result<Self> {
        let (secs, nanos) = load_pair::<u64, u32>(l, "Duration", DURATION_FIELDS)?;
        check_nanos(nanos)?;
        Ok(Duration::new(secs, nanos))
    }
}

fn check_nanos(nanos: u32) -> Result<()> {
    if nanos >= 1_000_000_000 {
        return Err(
            Error::invalid(format!("{nanos} nanoseconds is not below one second"))
                .in_field("nanos"),
        );
    }
    Ok(())
}

const SYSTEM_TIME_FIELDS: &[&str] = &["secs", "nanos"];

impl Stateify for SystemTime {
    fn save(&self, s: &mut Saver) -> Result<()> {
        let (secs, nanos) = match self.duration_since(UNIX_EPOCH) {
            Ok(d) => (i64::try_from(d.as_secs()).ok(), d.subsec_nanos()),
            // Before the epoch: whole seconds rounded down, nanoseconds
            // forward from there.
            Err(e) => {
                let d = e.duration();
                let back = i128::from(d.as_secs()) + i128::from(d.subsec_nanos() > 0);
                let secs = i64::try_from(-back).ok();
                (secs, (1_000_000_000 - d.subsec_nanos()) % 1_000_000_000)
            }
        };
        let secs =
            secs.ok_or_else(|| Error::custom("SystemTime is out of range for i64 seconds"))?;
        s.save_struct("SystemTime", SYSTEM_TIME_FIELDS, |s| {
            s.field("secs", &secs)?;
            s.field("nanos", &nanos)
        })
    }
    fn load(l: &mut Loader) -> Result<Self> {
        let at = l.offset();
        let (secs, nanos) = load_pair::<i64, u32>(l, "SystemTime", SYSTEM_TIME_FIELDS)?;
        check_nanos(nanos)?;
        let whole = if secs >= 0 {
            UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
        } else {
            UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
        };
        whole
            .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "SystemTime {secs} s {nanos} ns from the epoch cannot be represented here"
                ))
                .at(at)
            })
    }
}

const INSTANT_FIELDS: &[&str] = &["nanos_from_save"];

/// Nanoseconds from `base` to `t`, negative when `t` is earlier.
fn nanos_between(base: Instant, t: Instant) -> i128 {
    match t.checked_duration_since(base) {
        Some(d) => d.as_nanos() as i128,
        None => -(base.duration_since(t).as_nanos() as i128),
    }
}

impl Stateify for Instant {
    fn save(&self, s: &mut Saver) -> Result<()> {
        let offset = nanos_between(s.now(), *self);
        s.save_struct("Instant", INSTANT_FIELDS, |s| {
            s.field("nanos_from_save", &offset)
        })
    }
    fn load(l: &mut Loader) -> Result<Self> {
        let at = l.offset();
        let offset = super::load_one::<i128>(l, "Instant", INSTANT_FIELDS)?;
        let now = l.now();
        let d = u64::try_from(offset.unsigned_abs() / 1_000_000_000)
            .ok()
            .map(|secs| Duration::new(secs, (offset.unsigned_abs() % 1_000_000_000) as u32));
        let t = match d {
            Some(d) if offset >= 0 => now.checked_add(d),
            Some(d) => now.checked_sub(d),
            None => None,
        };
        t.ok_or_else(|| {
            Error::invalid(format!(
                "an Instant {offset} ns from the save cannot be represented here"
            ))
            .at(at)
        })
    }
}
