//! Each tenant's event-time clock: which events are late, and how far windows may close.
//!
//! A tenant's hosts do not share a clock. Were the watermark the tenant's newest event minus the allowed
//! lateness, one host whose clock runs a minute ahead would make every other host's events late, and
//! detections blind to them. So each host's newest event time is kept, and:
//!
//! - hosts whose newest event is within `skew` of the tenant's newest **hold** the watermark: it is the slowest
//!   of them minus the allowed lateness, and it never moves back;
//! - a host further behind (quiet, or its clock slow) stops holding; its events are late until it catches up;
//! - for its first `skew` of event time a tenant's watermark also stays `skew` behind its newest event, so the
//!   hosts not yet heard from are not late just because one running ahead spoke first.
//!
//! A quiet host holds the tenant's windows open for at most `skew` of event time. A host running further ahead
//! than `skew` still leaves the others behind: event time alone cannot tell it from the others being quiet.
//!
//! Live input also knows when each event was read, and there the watermark never passes the reader's clock
//! minus the allowed lateness: a host dated ahead of the clock (by less than the skew normalization allows)
//! while the others are quiet cannot make their next events late. Replayed archives have no such clock (they
//! are read long after they were written) and run on event time alone.
//!
//! Lateness is decided event by event in arrival order, so it does not depend on where batches are cut.

use std::collections::{BTreeMap, BTreeSet};

use arrow::array::BooleanArray;
use serde::{Deserialize, Serialize};

use super::state::{FastMap, Interner, Sym, NONE};

/// One tenant's clock, as checkpoints keep it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantClock {
    /// Newest event time of each host that holds the watermark, µs (`""` for events naming no host).
    pub hosts: BTreeMap<String, i64>,
    /// Events before it are late and windows ending at or before it close, µs; it never moves back.
    pub watermark: i64,
    /// The tenant's first event time, µs.
    #[serde(default = "long_ago")]
    pub since: i64,
}

/// A tenant first seen long ago (checkpoints without `since`).
fn long_ago() -> i64 {
    i64::MIN
}

/// Every tenant's clock.
#[derive(Debug, Default)]
pub(super) struct Clocks {
    tenants: FastMap<String, TenantClock>,
    lateness_us: i64,
    skew_us: i64,
}

impl Clocks {
    /// Clocks allowing `lateness_us` of disorder within a host and `skew_us` between hosts.
    pub fn new(lateness_us: i64, skew_us: i64) -> Self {
        Self {
            tenants: FastMap::default(),
            lateness_us,
            skew_us,
        }
    }

    /// The tenant's watermark, if it has seen events.
    pub fn watermark(&self, tenant: &str) -> Option<i64> {
        self.tenants.get(tenant).map(|c| c.watermark)
    }

    /// Every tenant's watermark.
    pub fn watermarks(&self) -> impl Iterator<Item = (&str, i64)> {
        self.tenants.iter().map(|(t, c)| (t.as_str(), c.watermark))
    }

    /// Decides lateness event by event (tenants and hosts as interned numbers, `times` in µs; for live input
    /// `reads`, when each event was read): returns the mask of events on time, puts the late rows in `late`,
    /// and moves the clocks.
    pub fn observe(
        &mut self,
        strings: &Interner,
        (tenants, hosts): (&[Sym], &[Sym]),
        times: &[i64],
        reads: Option<&[i64]>,
        late: &mut Vec<usize>,
    ) -> BooleanArray {
        let mut working: FastMap<Sym, Working> = FastMap::default();
        let mut keep = Vec::with_capacity(times.len());
        for (row, ((&t, &h), &time)) in tenants.iter().zip(hosts).zip(times).enumerate() {
            let ceiling = reads.map_or(i64::MAX, |r| r[row].saturating_sub(self.lateness_us));
            let w = working.entry(t).or_insert_with(|| {
                let name = strings.resolve(t).unwrap_or_default().to_owned();
                // Taken out for the batch, put back by `finish`.
                let clock = self.tenants.remove(&name).unwrap_or(TenantClock {
                    hosts: BTreeMap::new(),
                    watermark: i64::MIN,
                    since: time,
                });
                let limits = (self.lateness_us, self.skew_us, ceiling);
                Working::new(name, clock, strings, limits)
            });
            w.lift(ceiling);
            let is_late = time < w.watermark;
            keep.push(!is_late);
            if is_late {
                late.push(row);
            }
            w.observe(strings, h, time);
        }
        for (_, w) in working {
            let (name, clock) = w.finish();
            self.tenants.insert(name, clock);
        }
        BooleanArray::from(keep)
    }

    /// The clocks, for checkpoints.
    pub fn snapshot(&self) -> BTreeMap<String, TenantClock> {
        self.tenants
            .iter()
            .map(|(t, c)| (t.clone(), c.clone()))
            .collect()
    }

    /// Restores checkpointed clocks, and each tenant's newest event time from a checkpoint written before
    /// per-host clocks (as the watermark it implied, no hosts yet).
    pub fn restore(
        &mut self,
        clocks: BTreeMap<String, TenantClock>,
        newest: BTreeMap<String, i64>,
    ) {
        self.tenants = clocks.into_iter().collect();
        for (tenant, newest) in newest {
            self.tenants.entry(tenant).or_insert_with(|| TenantClock {
                hosts: BTreeMap::new(),
                watermark: newest - self.lateness_us,
                since: long_ago(),
            });
        }
    }
}

/// A tenant's clock while a batch is read: hosts in a vector, found by their interned number, and ordered by
/// their newest event time.
struct Working {
    tenant: String,
    /// (host, newest event time µs).
    hosts: Vec<(String, i64)>,
    /// Each host's index in `hosts` by interned number; a number not here is a host not yet seen.
    by_sym: FastMap<Sym, usize>,
    /// (newest event time, index in `hosts`) of every host that logged.
    by_time: BTreeSet<(i64, usize)>,
    watermark: i64,
    since: i64,
    /// The tenant's newest event time.
    newest_us: i64,
    lateness_us: i64,
    skew_us: i64,
    /// The watermark does not pass this: the reader's clock less the allowed lateness (`i64::MAX` when
    /// events carry no read time).
    ceiling: i64,
}

impl Working {
    /// `clock` for a batch whose strings are interned in `strings`, with (lateness, skew, ceiling) in µs.
    fn new(
        tenant: String,
        clock: TenantClock,
        strings: &Interner,
        (lateness_us, skew_us, ceiling): (i64, i64, i64),
    ) -> Self {
        let hosts: Vec<(String, i64)> = clock.hosts.into_iter().collect();
        // Every host of the batch is interned before its clock is read, so a kept host the batch names is
        // found here by its number (`""` stands for events naming no host too).
        let by_sym = (hosts.iter().enumerate())
            .flat_map(|(i, h)| {
                let absent = h.0.is_empty().then_some((NONE, i));
                strings
                    .lookup(&h.0)
                    .map(|sym| (sym, i))
                    .into_iter()
                    .chain(absent)
            })
            .collect();
        let by_time: BTreeSet<(i64, usize)> =
            (hosts.iter().enumerate()).map(|(i, h)| (h.1, i)).collect();
        let mut w = Self {
            tenant,
            newest_us: by_time.last().map_or(i64::MIN, |h| h.0),
            hosts,
            by_sym,
            by_time,
            watermark: clock.watermark,
            since: clock.since,
            lateness_us,
            skew_us,
            ceiling,
        };
        w.advance();
        w
    }

    /// Raises the ceiling to `ceiling` as the reader's clock moves on, and the watermark with it.
    fn lift(&mut self, ceiling: i64) {
        if ceiling > self.ceiling {
            self.ceiling = ceiling;
            self.advance();
        }
    }

    /// Hosts at or after this hold the watermark.
    fn floor(&self) -> i64 {
        self.newest_us.saturating_sub(self.skew_us)
    }

    /// Moves the watermark up to the slowest holding host, less the allowed lateness.
    fn advance(&mut self) {
        let floor = self.floor();
        if let Some(&(slowest, _)) = self.by_time.range((floor, 0)..).next() {
            // In the tenant's first skew the floor (never after the slowest holder) stands in for it.
            let held_by = if self.newest_us < self.since.saturating_add(self.skew_us) {
                floor
            } else {
                slowest
            };
            let candidate = held_by.saturating_sub(self.lateness_us).min(self.ceiling);
            self.watermark = self.watermark.max(candidate);
        }
    }

    /// One event of `host` at `time`.
    fn observe(&mut self, strings: &Interner, host: Sym, time: i64) {
        let i = *self.by_sym.entry(host).or_insert_with(|| {
            let name = strings.resolve(host).unwrap_or_default();
            self.hosts.push((name.to_owned(), i64::MIN));
            self.hosts.len() - 1
        });
        let before = self.hosts[i].1;
        if time <= before {
            return;
        }
        self.hosts[i].1 = time;
        // Inserted before the old entry goes, so a one-host tenant's set never empties (and frees its node).
        self.by_time.insert((time, i));
        self.by_time.remove(&(before, i));
        self.newest_us = self.newest_us.max(time);
        self.advance();
    }

    /// The clock to keep: hosts no longer holding are dropped (were one to come back, it would count as new,
    /// to the same effect).
    fn finish(self) -> (String, TenantClock) {
        let floor = self.floor();
        let hosts = self.hosts.into_iter().filter(|h| h.1 >= floor).collect();
        let clock = TenantClock {
            hosts,
            watermark: self.watermark,
            since: self.since,
        };
        (self.tenant, clock)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn many_hosts_cost_no_more_than_their_events() {
        // One tenant with 2^17 hosts logging in turn, over two batches: the second finds every host kept from
        // the first, and each of its events moves the slowest host on. Scanning the hosts for either takes
        // minutes.
        let n = 1 << 17;
        let mut strings = Interner::default();
        let tenant = strings.intern("acme");
        let hosts: Vec<Sym> = (0..n)
            .map(|i| strings.intern(&format!("host-{i}")))
            .collect();
        let tenants = vec![tenant; n];
        let mut clocks = Clocks::new(30_000_000, 300_000_000);
        let started = Instant::now();
        for batch in 0..2i64 {
            let times: Vec<i64> = (0..n as i64).map(|i| batch * 1_000_000 + i).collect();
            let mut late = Vec::new();
            clocks.observe(&strings, (&tenants, &hosts), &times, None, &mut late);
            assert!(late.is_empty());
        }
        let elapsed = started.elapsed();
        assert_eq!(clocks.snapshot()["acme"].hosts.len(), n);
        assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    }
}
