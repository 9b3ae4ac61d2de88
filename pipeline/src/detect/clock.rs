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
//! Lateness is decided event by event in arrival order, so it does not depend on where batches are cut.

use std::collections::BTreeMap;

use arrow::array::BooleanArray;
use serde::{Deserialize, Serialize};

use super::state::{FastMap, Interner, Sym};

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

    /// Decides lateness event by event (tenants and hosts as interned numbers, `times` in µs): returns the
    /// mask of events on time, puts the late rows in `late`, and moves the clocks.
    pub fn observe(
        &mut self,
        strings: &Interner,
        tenants: &[Sym],
        hosts: &[Sym],
        times: &[i64],
        late: &mut Vec<usize>,
    ) -> BooleanArray {
        let mut working: FastMap<Sym, Working> = FastMap::default();
        let mut keep = Vec::with_capacity(times.len());
        for (row, ((&t, &h), &time)) in tenants.iter().zip(hosts).zip(times).enumerate() {
            let w = working.entry(t).or_insert_with(|| {
                let name = strings.resolve(t).unwrap_or_default().to_owned();
                // Taken out for the batch, put back by `finish`.
                let clock = self.tenants.remove(&name).unwrap_or(TenantClock {
                    hosts: BTreeMap::new(),
                    watermark: i64::MIN,
                    since: time,
                });
                Working::new(name, clock, self.lateness_us, self.skew_us)
            });
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

/// A tenant's clock while a batch is read: hosts in a vector, found by their interned number.
struct Working {
    tenant: String,
    /// (host, newest event time µs).
    hosts: Vec<(String, i64)>,
    by_sym: FastMap<Sym, usize>,
    watermark: i64,
    since: i64,
    /// The tenant's newest event time.
    newest_us: i64,
    /// The slowest holding host's time (`i64::MAX` when none holds).
    slowest_us: i64,
    lateness_us: i64,
    skew_us: i64,
}

impl Working {
    fn new(tenant: String, clock: TenantClock, lateness_us: i64, skew_us: i64) -> Self {
        let mut w = Self {
            tenant,
            hosts: clock.hosts.into_iter().collect(),
            by_sym: FastMap::default(),
            watermark: clock.watermark,
            since: clock.since,
            newest_us: i64::MIN,
            slowest_us: i64::MAX,
            lateness_us,
            skew_us,
        };
        w.rank();
        w
    }

    /// Hosts at or after this hold the watermark.
    fn floor(&self) -> i64 {
        self.newest_us.saturating_sub(self.skew_us)
    }

    /// Finds the newest time and the slowest holder, and moves the watermark up to it.
    fn rank(&mut self) {
        self.newest_us = self.hosts.iter().map(|h| h.1).max().unwrap_or(i64::MIN);
        let floor = self.floor();
        self.slowest_us = (self.hosts.iter().map(|h| h.1))
            .filter(|&t| t >= floor)
            .min()
            .unwrap_or(i64::MAX);
        self.advance();
    }

    fn advance(&mut self) {
        if self.slowest_us != i64::MAX {
            // In the tenant's first skew the floor (never after the slowest holder) stands in for it.
            let held_by = if self.newest_us < self.since.saturating_add(self.skew_us) {
                self.floor()
            } else {
                self.slowest_us
            };
            let candidate = held_by.saturating_sub(self.lateness_us);
            self.watermark = self.watermark.max(candidate);
        }
    }

    /// One event of `host` at `time`.
    fn observe(&mut self, strings: &Interner, host: Sym, time: i64) {
        let i = match self.by_sym.get(&host) {
            Some(&i) => i,
            None => {
                let name = strings.resolve(host).unwrap_or_default();
                let i = match self.hosts.iter().position(|h| h.0 == name) {
                    Some(i) => i,
                    None => {
                        self.hosts.push((name.to_owned(), i64::MIN));
                        self.hosts.len() - 1
                    }
                };
                self.by_sym.insert(host, i);
                i
            }
        };
        let before = self.hosts[i].1;
        if time <= before {
            return;
        }
        self.hosts[i].1 = time;
        self.newest_us = self.newest_us.max(time);
        if before == self.slowest_us || self.slowest_us < self.floor() {
            // The slowest holder moved on or fell behind: find the next.
            self.rank();
        } else {
            if time >= self.floor() && time < self.slowest_us {
                // A host joined the holders behind the slowest: the watermark waits for it.
                self.slowest_us = time;
            }
            self.advance();
        }
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
