//! Save and load statistics, in the spirit of gVisor's Stats table: how many
//! values of each type went through, and (when timing is enabled) how long
//! each type took, inclusive of what it contains.

use std::fmt;
use std::time::Duration;

/// Figures for one type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TypeStat {
    /// The type's name as written in the type table.
    pub name: String,
    /// Values of this type encoded or decoded.
    pub count: u64,
    /// Time spent in values of this type, including nested values
    /// (only with timing enabled).
    pub time: Option<Duration>,
}

/// What one `save` or `load` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Shared (`Rc`/`Arc`) objects written or rebuilt.
    pub objects: u64,
    /// Bytes of the graph record, header included.
    pub bytes: u64,
    /// Wall time of the whole operation.
    pub elapsed: Duration,
    /// One row per struct or enum type, in type-table order (a trait
    /// object's value counts under its concrete type).
    pub types: Vec<TypeStat>,
}

/// Statistics of a save.
pub type SaveStats = Stats;
/// Statistics of a load.
pub type LoadStats = Stats;

impl Stats {
    /// The row for a type name.
    pub fn get(&self, name: &str) -> Option<&TypeStat> {
        self.types.iter().find(|t| t.name == name)
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} bytes, {} shared objects, {:?}",
            self.bytes, self.objects, self.elapsed
        )?;
        let mut rows: Vec<&TypeStat> = self.types.iter().collect();
        rows.sort_by(|a, b| b.time.cmp(&a.time).then(b.count.cmp(&a.count)));
        writeln!(f, "{:<40} {:>12} {:>14}", "type", "count", "time")?;
        for r in rows {
            let t = r
                .time
                .map(|t| format!("{t:?}"))
                .unwrap_or_else(|| "-".into());
            writeln!(f, "{:<40} {:>12} {:>14}", r.name, r.count, t)?;
        }
        Ok(())
    }
}

/// Counters indexed by type id, turned into a [`Stats`] at the end.
#[derive(Default)]
pub(crate) struct Counters {
    pub names: Vec<String>,
    pub counts: Vec<u64>,
    pub times: Option<Vec<Duration>>,
    /// By type id: a trait object's name (`DefKind::Dyn`), left out of the
    /// rows: its value is counted under its own, often equal, type name.
    pub dyn_names: Vec<bool>,
}

impl Counters {
    pub fn new(timing: bool) -> Self {
        Counters {
            times: timing.then(Vec::new),
            ..Default::default()
        }
    }

    pub fn add_type(&mut self, name: &str, dyn_name: bool) {
        self.names.push(name.to_owned());
        self.dyn_names.push(dyn_name);
        self.counts.push(0);
        if let Some(t) = &mut self.times {
            t.push(Duration::ZERO);
        }
    }

    /// Drops the types from index `n` on (a save that rewinds).
    pub fn forget_types(&mut self, n: usize) {
        self.names.truncate(n);
        self.dyn_names.truncate(n);
        self.counts.truncate(n);
        if let Some(t) = &mut self.times {
            t.truncate(n);
        }
    }

    pub fn finish(self, objects: u64, bytes: u64, elapsed: Duration) -> Stats {
        let times = self.times;
        let dyn_names = self.dyn_names;
        let types = self
            .names
            .into_iter()
            .zip(self.counts)
            .enumerate()
            .filter(|(i, _)| !dyn_names[*i])
            .map(|(i, (name, count))| TypeStat {
                name,
                count,
                time: times.as_ref().map(|t| t[i]),
            })
            .collect();
        Stats {
            objects,
            bytes,
            elapsed,
            types,
        }
    }
}
