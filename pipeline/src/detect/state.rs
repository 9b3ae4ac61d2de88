//! The engine's keyed window state: for each (detection, tenant, entity), the partial aggregates of every
//! window pane not yet evaluated.
//!
//! Keys and distinct-set members are interned to small integers, so merging a partial row and evaluating a
//! window allocate nothing; strings come back only when a window fires or the state is saved. The saved form
//! ([`SavedEntity`]) holds strings, so checkpoints do not depend on interning.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::definition::{Merge, GROUPABLE};

/// A hash map with a fast (non-cryptographic, randomly seeded) hasher for in-memory state.
pub(super) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// An interned string.
pub(super) type Sym = u32;
/// The interned form of an absent value.
pub(super) const NONE: Sym = Sym::MAX;
/// Most group-by columns a detection can have (each groupable column once).
pub(super) const MAX_KEYS: usize = GROUPABLE.len();

/// Evidence event ids kept per signal.
pub const MAX_EVIDENCE: usize = 10;
/// Evidence combinations kept per pane (and per batch partial). Enough for the earliest [`MAX_EVIDENCE`] of
/// any window to be exact: a combination among a window's earliest ones has its first event of the window in
/// some pane, and only combinations that come earlier in the window too can come before it in that pane.
const EVIDENCE_KEPT: usize = MAX_EVIDENCE;

/// Strings by number and numbers by string, with each string's [`value_hash`].
#[derive(Debug, Default)]
pub(super) struct Interner {
    ids: FastMap<Box<str>, Sym>,
    strings: Vec<Box<str>>,
    hashes: Vec<u64>,
    /// The first this many strings are pinned: every [`Interner::fresh`] copy keeps their numbers.
    pinned: usize,
}

impl Interner {
    /// The number of `s`, assigned on first sight.
    pub fn intern(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strings.len() as Sym;
        self.strings.push(s.into());
        self.hashes.push(value_hash(Some(s)));
        self.ids.insert(s.into(), id);
        id
    }

    /// The number of `s`, which every [`Interner::fresh`] copy keeps (for the literals plans compare with).
    /// Strings are pinned before any other is interned.
    pub fn pin(&mut self, s: &str) -> Sym {
        if let Some(id) = self.lookup(s) {
            assert!((id as usize) < self.pinned, "{s:?} was interned unpinned");
            return id;
        }
        assert_eq!(
            self.pinned,
            self.strings.len(),
            "pinned after other strings"
        );
        self.pinned += 1;
        self.intern(s)
    }

    /// An interner holding only this one's pinned strings, with the same numbers.
    pub fn fresh(&self) -> Self {
        let mut fresh = Self::default();
        for s in &self.strings[..self.pinned] {
            fresh.pin(s);
        }
        fresh
    }

    /// [`Interner::intern`], with [`NONE`] for an absent value.
    pub fn intern_opt(&mut self, s: Option<&str>) -> Sym {
        s.map_or(NONE, |s| self.intern(s))
    }

    /// The number of `s` if it has one.
    pub fn lookup(&self, s: &str) -> Option<Sym> {
        self.ids.get(s).copied()
    }

    /// The string of `id` (`None` for [`NONE`]).
    pub fn resolve(&self, id: Sym) -> Option<&str> {
        (id != NONE).then(|| &*self.strings[id as usize])
    }

    /// The [`value_hash`] of `id`'s string (of an absent value for [`NONE`]).
    #[inline]
    pub fn hash(&self, id: Sym) -> u64 {
        static ABSENT: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| value_hash(None));
        match self.hashes.get(id as usize) {
            Some(&h) => h,
            None => *ABSENT,
        }
    }

    /// How many strings are interned.
    pub fn len(&self) -> usize {
        self.strings.len()
    }
}

/// A merged aggregate value, as conditions, risk and narratives see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// Absent (e.g. `min` over no rows).
    Null,
    /// Integer (counts, epoch µs).
    Int(i64),
    /// Float.
    Float(f64),
    /// Distinct strings.
    Set(BTreeSet<String>),
}

impl Value {
    /// Numeric view: sets count as their size.
    pub fn num(&self) -> Option<f64> {
        match self {
            Value::Null => None,
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Set(s) => Some(s.len() as f64),
        }
    }
}

/// A number read from a plan's output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Num {
    /// Integer (counts, epoch µs).
    Int(i64),
    /// Float.
    Float(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

/// One partial aggregate of a pane.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Cell {
    /// No rows yet.
    Null,
    /// Integer.
    Int(i64),
    /// Float (mixed or float inputs).
    Float(f64),
    /// Distinct interned strings, sorted.
    Set(Vec<Sym>),
}

/// Members a set has room for when its first one comes: the usual handful at once, not grown through 4 and 8.
const SET_START: usize = 8;

/// Members up to which a set takes new ones one at a time; a larger set takes them merged in bulk, so that
/// building or merging a set of `n` members costs `n log n`, not `n²`.
pub(super) const SET_SMALL: usize = 32;

/// Adds `member` to a sorted set of distinct members, if it is not there yet.
#[inline]
pub(super) fn insert_member(set: &mut Vec<Sym>, member: Sym) {
    if let Err(at) = set.binary_search(&member) {
        if set.is_empty() {
            set.reserve_exact(SET_START);
        }
        set.insert(at, member);
    }
}

/// Adds the members of sorted set `members` to sorted set `set`: one by one into a small set, else merged
/// in one pass.
pub(super) fn union_sorted(set: &mut Vec<Sym>, members: &[Sym]) {
    if set.len() + members.len() <= SET_SMALL || members.len() == 1 {
        members.iter().for_each(|&m| insert_member(set, m));
        return;
    }
    let mut merged = Vec::with_capacity(set.len() + members.len());
    let (mut a, mut b) = (set.iter().peekable(), members.iter().peekable());
    while let (Some(&&x), Some(&&y)) = (a.peek(), b.peek()) {
        merged.push(x.min(y));
        if x <= y {
            a.next();
        }
        if y <= x {
            b.next();
        }
    }
    merged.extend(a);
    merged.extend(b);
    *set = merged;
}

/// How two numbers of one value combine across events or panes: the smaller, the larger, or the sum.
fn fold(x: f64, y: f64, how: Merge) -> f64 {
    match how {
        Merge::Min => x.min(y),
        Merge::Max => x.max(y),
        _ => x + y,
    }
}

impl Cell {
    /// Folds a number in.
    pub fn merge_num(&mut self, v: Num, how: Merge) {
        *self = match (&*self, v, how) {
            (Cell::Null, Num::Int(b), _) => Cell::Int(b),
            (Cell::Null, Num::Float(b), _) => Cell::Float(b),
            (Cell::Int(a), Num::Int(b), Merge::Sum) => Cell::Int(a + b),
            (Cell::Int(a), Num::Int(b), Merge::Min) => Cell::Int(*a.min(&b)),
            (Cell::Int(a), Num::Int(b), Merge::Max) => Cell::Int(*a.max(&b)),
            (a, b, how) => Cell::Float(fold(a.num().unwrap_or(0.0), b.as_f64(), how)),
        };
    }

    /// Adds the members of a sorted set.
    pub fn union(&mut self, members: &[Sym]) {
        match self {
            Cell::Set(set) => union_sorted(set, members),
            other => {
                if !members.is_empty() {
                    *other = Cell::Set(members.to_vec());
                }
            }
        }
    }

    /// [`Cell::union`] of a set the caller no longer needs: moved in, not copied, when this cell has none.
    pub fn absorb(&mut self, members: Vec<Sym>) {
        match self {
            Cell::Set(set) if !set.is_empty() => self.union(&members),
            _ if members.is_empty() => {}
            _ => *self = Cell::Set(members),
        }
    }

    /// Folds another pane's cell in.
    fn merge(&mut self, other: &Cell, how: Merge) {
        match other {
            Cell::Null => {}
            Cell::Int(b) => self.merge_num(Num::Int(*b), how),
            Cell::Float(b) => self.merge_num(Num::Float(*b), how),
            Cell::Set(b) => self.union(b),
        }
    }

    fn num(&self) -> Option<f64> {
        match self {
            Cell::Null => None,
            Cell::Int(i) => Some(*i as f64),
            Cell::Float(f) => Some(*f),
            Cell::Set(s) => Some(s.len() as f64),
        }
    }

    fn to_value(&self, strings: &Interner) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Int(i) => Value::Int(*i),
            Cell::Float(f) => Value::Float(*f),
            Cell::Set(s) => Value::Set(
                s.iter()
                    .filter_map(|&id| strings.resolve(id).map(str::to_owned))
                    .collect(),
            ),
        }
    }

    fn from_value(v: &Value, strings: &mut Interner) -> Cell {
        match v {
            Value::Null => Cell::Null,
            Value::Int(i) => Cell::Int(*i),
            Value::Float(f) => Cell::Float(*f),
            Value::Set(s) => {
                let mut ids: Vec<Sym> = s.iter().map(|x| strings.intern(x)).collect();
                ids.sort_unstable();
                Cell::Set(ids)
            }
        }
    }
}

/// An event id as a sample keeps it: plain data, so that samples allocate nothing and closed panes are freed
/// without reading them. Ids of at most 32 bytes (every id Sentra makes) are held inline; a longer one (only
/// in batches built by other means) lives in its pane's [`Evidence::long`] and is named by its index there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IdText {
    /// The id's length, or [`IdText::LONG`].
    len: u8,
    /// The id, or for a long one its index in [`Evidence::long`] (little-endian, first 8 bytes).
    bytes: [u8; 32],
}

impl IdText {
    /// `len` of an id kept in [`Evidence::long`].
    const LONG: u8 = u8::MAX;
}

/// One sample: the combination's hash, its first event's time and id.
type Sample = (u64, i64, IdText);

/// Sample events of a pane: per combination of dimension values (host, distinct columns), its first event
/// by (time, id). Only the [`EVIDENCE_KEPT`] earliest combinations are kept. Exact whatever the order and
/// batching of the input: a combination's first event only gets earlier, so one that fell out (behind
/// the kept ones) can only come back with its true first event.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Evidence {
    /// Per combination hash its first (time, id), unordered.
    items: Vec<Sample>,
    /// Index and time of the latest item, kept once full: an event after it changes nothing, whatever its
    /// combination.
    latest: Option<(usize, i64)>,
    /// Ids longer than an [`IdText`] holds, by index (some may belong to samples since replaced).
    long: Vec<Box<[u8]>>,
}

impl Evidence {
    /// Adds an event of a combination.
    pub fn add(&mut self, combo: u64, time: i64, id: &[u8]) {
        self.add_with(time, id, || combo);
    }

    /// The bytes of a kept id.
    fn bytes<'a>(&'a self, id: &'a IdText) -> &'a [u8] {
        if id.len == IdText::LONG {
            let at = u64::from_le_bytes(id.bytes[..8].try_into().expect("8 bytes"));
            &self.long[at as usize]
        } else {
            &id.bytes[..id.len as usize]
        }
    }

    /// `id` as a sample keeps it.
    fn keep(&mut self, id: &[u8]) -> IdText {
        if let Ok(bytes) = <[u8; 32]>::try_from(id) {
            // Every id Sentra makes: a fixed-size copy, not a call to `memcpy`.
            return IdText { len: 32, bytes };
        }
        let mut bytes = [0u8; 32];
        if id.len() <= 32 {
            bytes[..id.len()].copy_from_slice(id);
            return IdText {
                len: id.len() as u8,
                bytes,
            };
        }
        bytes[..8].copy_from_slice(&(self.long.len() as u64).to_le_bytes());
        self.long.push(id.into());
        IdText {
            len: IdText::LONG,
            bytes,
        }
    }

    /// Adds an event whose combination hash `combo` computes, only called when the event could be kept.
    /// In time order (the usual case) a full pane rejects an event after one comparison.
    pub fn add_with(&mut self, time: i64, id: &[u8], combo: impl FnOnce() -> u64) {
        if let Some((latest, _)) = self.latest {
            let have = &self.items[latest];
            if time > have.1 || (time == have.1 && id >= self.bytes(&have.2)) {
                // Not before the latest kept sample, so not before its own combination's either.
                return;
            }
        }
        let combo = combo();
        if let Some(i) = self.items.iter().position(|item| item.0 == combo) {
            let item = &self.items[i];
            if (time, id) < (item.1, self.bytes(&item.2)) {
                self.items[i] = (combo, time, self.keep(id));
                if self.latest.is_some_and(|(l, _)| l == i) {
                    self.find_latest();
                }
            }
            return;
        }
        if self.items.len() < EVIDENCE_KEPT {
            if self.items.is_empty() {
                self.items.reserve_exact(EVIDENCE_KEPT);
            }
            let kept = self.keep(id);
            self.items.push((combo, time, kept));
            if self.items.len() == EVIDENCE_KEPT {
                self.find_latest();
            }
            return;
        }
        // Full, and earlier than the latest: it takes the latest one's place.
        let (latest, _) = self.latest.expect("known once full");
        self.items[latest] = (combo, time, self.keep(id));
        self.find_latest();
    }

    fn find_latest(&mut self) {
        self.latest = (0..self.items.len())
            .max_by(|&a, &b| {
                let (x, y) = (&self.items[a], &self.items[b]);
                (x.1, self.bytes(&x.2)).cmp(&(y.1, self.bytes(&y.2)))
            })
            .map(|i| (i, self.items[i].1));
    }

    /// Whether an event at `time` is after every kept sample of a full pane, so that adding it would change
    /// nothing: the check [`Evidence::add_with`] starts with, before the event's id is even read.
    #[inline]
    pub fn is_past(&self, time: i64) -> bool {
        self.latest.is_some_and(|(_, latest)| time > latest)
    }

    /// [`Evidence::merge`] of samples the caller no longer needs: moved in when this pane has none.
    pub fn absorb(&mut self, other: Evidence) {
        if self.items.is_empty() {
            *self = other;
        } else {
            self.merge(&other);
        }
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Evidence) {
        for (combo, time, id) in other.samples() {
            self.add(combo, time, id);
        }
    }

    /// Every sample: (combination hash, time, id).
    fn samples(&self) -> impl Iterator<Item = (u64, i64, &[u8])> {
        self.items
            .iter()
            .map(|(combo, time, id)| (*combo, *time, self.bytes(id)))
    }

    /// The first [`MAX_EVIDENCE`] samples in event order.
    pub fn ids(&self) -> Vec<String> {
        let mut all: Vec<(i64, &[u8])> = self.samples().map(|(_, t, id)| (t, id)).collect();
        all.sort_unstable();
        all.into_iter()
            .take(MAX_EVIDENCE)
            .map(|(_, id)| String::from_utf8_lossy(id).into_owned())
            .collect()
    }
}

/// XXH3 of a value's text (of `"\0"` when absent), the part of a [`combo_hash`] each value contributes.
pub(super) fn value_hash(value: Option<&str>) -> u64 {
    twox_hash::XxHash3_64::oneshot(value.unwrap_or("\u{0}").as_bytes())
}

/// A combination's hash, from its values' [`value_hash`]es in order: stable across runs, platforms and
/// versions (checkpoints keep it). Checkpoints from before 2026-11-23 hashed the values' text in one piece
/// (before 2026-11-22, with FNV-1a); their open windows may show a combination twice in their samples.
#[inline]
pub(super) fn combo_hash(value_hashes: impl Iterator<Item = u64>) -> u64 {
    value_hashes.fold(0x243F_6A88_85A3_08D3, |h, v| {
        let h = (h ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^ (h >> 29)
    })
}

/// Partial aggregates of one pane.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pane {
    /// Pane start, epoch µs.
    pub start: i64,
    /// One cell per value of the detection.
    pub cells: Vec<Cell>,
    /// Sample events.
    pub evidence: Evidence,
}

/// Which (detection, tenant, entity) a state belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct EntityKey {
    /// Index of the detection.
    pub det: u32,
    /// The tenant.
    pub tenant: Sym,
    /// The group-by values, [`NONE`] for null; slots past the detection's keys are [`NONE`] too.
    pub keys: [Sym; MAX_KEYS],
}

/// Window state of one (detection, tenant, entity).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entity {
    /// Panes by start, ascending.
    pub panes: VecDeque<Pane>,
    /// Next window end to evaluate.
    pub next_end: i64,
    /// Windows starting before this stay quiet (set when a window fires).
    pub fired_until: i64,
    /// Starts of the first and last pane of the last window whose conditions were checked. A later window
    /// of the same panes has the same values (panes of an evaluated window take no more events: they
    /// would be late), so it cannot fire: either that window did not, or it did and this one is quiet.
    pub checked: (i64, i64),
    /// When a partial row was last merged in, as the engine counts merges: which entities are least
    /// recently active.
    pub touched: u64,
}

impl Entity {
    /// A new state whose first window to evaluate ends at `next_end`.
    pub fn new(next_end: i64) -> Self {
        Self {
            panes: VecDeque::new(),
            next_end,
            fired_until: 0,
            checked: (i64::MIN, i64::MIN),
            touched: 0,
        }
    }

    /// Events in its open panes (every detection's first value is its event count).
    pub fn events(&self) -> i64 {
        (self.panes.iter())
            .map(|p| match p.cells.first() {
                Some(Cell::Int(n)) => *n,
                _ => 0,
            })
            .sum()
    }

    /// The pane starting at `start`, created (with `n` empty cells) if needed.
    pub fn pane_mut(&mut self, start: i64, n: usize) -> &mut Pane {
        // Input is mostly in time order: search from the newest pane.
        let at = self
            .panes
            .iter()
            .rposition(|p| p.start <= start)
            .map_or(0, |i| i + 1);
        if at == 0 || self.panes[at - 1].start != start {
            let pane = Pane {
                start,
                cells: vec![Cell::Null; n],
                evidence: Evidence::default(),
            };
            self.panes.insert(at, pane);
            return &mut self.panes[at];
        }
        &mut self.panes[at - 1]
    }

    /// Indices of the panes starting in `[start, end)`.
    pub fn window(&self, start: i64, end: i64) -> Range<usize> {
        // Closing pops the panes before each next window, so it usually starts at the first pane.
        let lo = match self.panes.front() {
            Some(first) if first.start >= start => 0,
            _ => self.panes.partition_point(|p| p.start < start),
        };
        let hi = lo + self.panes.range(lo..).take_while(|p| p.start < end).count();
        lo..hi
    }

    /// Every interned number this state holds, renumbered by `f`.
    fn renumber(&mut self, f: &mut impl FnMut(Sym) -> Sym) {
        for pane in &mut self.panes {
            for cell in &mut pane.cells {
                if let Cell::Set(s) = cell {
                    for id in s.iter_mut() {
                        *id = f(*id);
                    }
                    s.sort_unstable();
                }
            }
        }
    }
}

/// Scratch space for evaluating windows, reused so that evaluation allocates nothing.
#[derive(Debug, Default)]
pub(super) struct Scratch {
    /// One number per value of the detection.
    pub nums: Vec<Option<f64>>,
    members: Vec<Sym>,
}

impl Scratch {
    /// Forgets every value, for a detection with `n` values.
    pub fn reset(&mut self, n: usize) {
        self.nums.clear();
        self.nums.resize(n, None);
    }

    /// The numeric view of the window's merged values listed in `needed`, into `self.nums`: sets as their
    /// distinct size. The others are left as they are.
    pub fn window_numbers(
        &mut self,
        panes: &VecDeque<Pane>,
        window: Range<usize>,
        merges: &[Merge],
        needed: &[usize],
    ) {
        for &i in needed {
            self.nums[i] = if merges[i] == Merge::Union {
                self.members.clear();
                for pane in panes.range(window.clone()) {
                    if let Cell::Set(s) = &pane.cells[i] {
                        self.members.extend_from_slice(s);
                    }
                }
                self.members.sort_unstable();
                self.members.dedup();
                Some(self.members.len() as f64)
            } else {
                panes.range(window.clone()).fold(None, |acc, pane| {
                    let x = match pane.cells[i] {
                        Cell::Null | Cell::Set(_) => return acc,
                        Cell::Int(v) => v as f64,
                        Cell::Float(v) => v,
                    };
                    Some(acc.map_or(x, |a| fold(a, x, merges[i])))
                })
            };
        }
    }
}

/// The window's panes merged: its values (strings resolved) and evidence ids.
pub(super) fn merge_window(
    panes: &VecDeque<Pane>,
    window: Range<usize>,
    merges: &[Merge],
    strings: &Interner,
) -> (Vec<Value>, Vec<String>) {
    let mut cells = vec![Cell::Null; merges.len()];
    let mut evidence = Evidence::default();
    for pane in panes.range(window) {
        for ((acc, cell), how) in cells.iter_mut().zip(&pane.cells).zip(merges) {
            acc.merge(cell, *how);
        }
        evidence.merge(&pane.evidence);
    }
    let values = cells.iter().map(|c| c.to_value(strings)).collect();
    (values, evidence.ids())
}

/// Partial aggregates of one pane, as saved in a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct SavedPane {
    values: Vec<Value>,
    /// Sample per combination hash: (first time, smallest id).
    evidence: BTreeMap<u64, (i64, String)>,
}

/// Window state of one entity, as saved in a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct SavedState {
    panes: BTreeMap<i64, SavedPane>,
    next_end: i64,
    fired_until: i64,
    /// See [`Entity::touched`].
    #[serde(default)]
    touched: u64,
}

/// One entity's identity and window state, as saved in a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct SavedEntity {
    /// The detection's name.
    pub detection: String,
    /// The group-by values.
    pub keys: Vec<Option<String>>,
    /// The window state.
    pub state: SavedState,
}

impl Entity {
    /// The saved form.
    pub fn save(&self, strings: &Interner) -> SavedState {
        let panes = self
            .panes
            .iter()
            .map(|p| {
                let saved = SavedPane {
                    values: p.cells.iter().map(|c| c.to_value(strings)).collect(),
                    evidence: p
                        .evidence
                        .samples()
                        .map(|(combo, time, id)| {
                            (combo, (time, String::from_utf8_lossy(id).into_owned()))
                        })
                        .collect(),
                };
                (p.start, saved)
            })
            .collect();
        SavedState {
            panes,
            next_end: self.next_end,
            fired_until: self.fired_until,
            touched: self.touched,
        }
    }

    /// Back from the saved form.
    pub fn load(saved: &SavedState, strings: &mut Interner) -> Self {
        let panes = saved
            .panes
            .iter()
            .map(|(&start, p)| Pane {
                start,
                cells: p
                    .values
                    .iter()
                    .map(|v| Cell::from_value(v, strings))
                    .collect(),
                evidence: {
                    let mut e = Evidence::default();
                    for (&combo, (time, id)) in &p.evidence {
                        e.add(combo, *time, id.as_bytes());
                    }
                    e
                },
            })
            .collect();
        Self {
            panes,
            next_end: saved.next_end,
            fired_until: saved.fired_until,
            checked: (i64::MIN, i64::MIN),
            touched: saved.touched,
        }
    }
}

/// Re-interns everything `state` refers to into a fresh interner, dropping strings no state holds any more
/// (keys and set members of closed windows); returns the new interner.
pub(super) fn compact(state: &mut FastMap<EntityKey, Entity>, old: &Interner) -> Interner {
    let mut fresh = old.fresh();
    let mut renumber = |id: Sym| match old.resolve(id) {
        Some(s) => fresh.intern(s),
        None => NONE,
    };
    let entries: Vec<(EntityKey, Entity)> = state.drain().collect();
    for (mut key, mut entity) in entries {
        key.tenant = renumber(key.tenant);
        for k in &mut key.keys {
            *k = renumber(*k);
        }
        entity.renumber(&mut renumber);
        state.insert(key, entity);
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_keeps_the_earliest_combinations_whatever_the_order() {
        // Sentra's 32-character ids, then some longer ones among them (kept apart from the samples).
        for long_every in [0, 3] {
            evidence_is_exact(long_every);
        }
    }

    fn evidence_is_exact(long_every: u64) {
        // Combinations seen several times, in scrambled time order.
        let candidates: Vec<(u64, i64, String)> = (0..400u64)
            .map(|i| {
                let width = if long_every > 0 && i % long_every == 0 {
                    48
                } else {
                    32
                };
                (
                    i % 97,
                    (i * 7919 % 200) as i64,
                    format!("{:0width$x}", i * 31 % 211),
                )
            })
            .collect();
        let add = |e: &mut Evidence, (c, t, id): &(u64, i64, String)| e.add(*c, *t, id.as_bytes());
        let mut forward = Evidence::default();
        candidates.iter().for_each(|c| add(&mut forward, c));
        let mut backward = Evidence::default();
        candidates.iter().rev().for_each(|c| add(&mut backward, c));
        // Exact reference: per combination its first (time, id), then the earliest ten.
        let mut best: BTreeMap<u64, (i64, String)> = BTreeMap::new();
        for (c, t, id) in &candidates {
            let e = best.entry(*c).or_insert((*t, id.clone()));
            if (*t, id) < (e.0, &e.1) {
                *e = (*t, id.clone());
            }
        }
        let mut expected: Vec<(i64, String)> = best.into_values().collect();
        expected.sort();
        let expected: Vec<String> = expected
            .into_iter()
            .take(MAX_EVIDENCE)
            .map(|e| e.1)
            .collect();
        assert_eq!(forward.ids(), expected);
        assert_eq!(backward.ids(), expected);
        // In time order, as logs mostly come: the full pane's quick rejection must keep it exact.
        let mut in_time_order = candidates.clone();
        in_time_order.sort_by_key(|c| c.1);
        let mut sorted = Evidence::default();
        in_time_order.iter().for_each(|c| add(&mut sorted, c));
        assert_eq!(sorted.ids(), expected);
        // Cut into batches and merged, as panes are.
        let mut merged = Evidence::default();
        for chunk in candidates.chunks(37) {
            let mut part = Evidence::default();
            chunk.iter().for_each(|c| add(&mut part, c));
            merged.merge(&part);
        }
        assert_eq!(merged.ids(), expected);
        if long_every > 0 {
            assert!(
                expected.iter().any(|id| id.len() == 48),
                "long ids are among the kept"
            );
        }
    }

    #[test]
    fn compaction_keeps_only_live_strings_and_their_meaning() {
        let mut strings = Interner::default();
        let dead = strings.intern("gone");
        let ip = strings.intern("10.0.0.1");
        let (alice, bob) = (strings.intern("alice"), strings.intern("bob"));
        let mut entity = Entity::new(60);
        let pane = entity.pane_mut(0, 1);
        let mut members = vec![alice, bob];
        members.sort_unstable();
        pane.cells[0].union(&members);
        let mut keys = [NONE; MAX_KEYS];
        keys[0] = ip;
        let key = EntityKey {
            det: 0,
            tenant: strings.intern("acme"),
            keys,
        };
        let before = entity.save(&strings);
        let mut state = FastMap::default();
        state.insert(key, entity);
        let fresh = compact(&mut state, &strings);
        assert_eq!(fresh.len(), 4);
        assert_eq!(fresh.lookup("gone"), None);
        let _ = dead;
        let (key, entity) = state.iter().next().unwrap();
        assert_eq!(fresh.resolve(key.keys[0]), Some("10.0.0.1"));
        assert_eq!(fresh.resolve(key.tenant), Some("acme"));
        assert_eq!(key.keys[1], NONE);
        assert_eq!(entity.save(&fresh), before);
    }
}
