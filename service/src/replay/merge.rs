//! Puts the events of several inputs into one time order, as if each had arrived when it happened.
//!
//! Files have no arrival order: `auth.log` and `auth.log.1`, or one file per host group, cover the same hosts
//! and hours. Read one after another, the second file's events would fall behind the watermark the first
//! one moved and be dropped as late. So replay reads its inputs side by side, a batch at a time, always the
//! input furthest behind next (a k-way merge), and hands on events in time order up to the **frontier**:
//! the newest event time of the input furthest behind, less the reorder bound. No input is expected to go
//! back further than the bound, so nothing it still holds can come before an event handed on; within the
//! bound an input may be out of order (nearly sorted files, `cat *.log |`).
//!
//! An event that does arrive behind what was already handed on (an input more disordered than the bound) is
//! handed on with the next batch and counted as out of order; the engine then decides whether it is late.
//! Memory is one batch per input plus what falls within the bound; nothing held is copied again.

use arrow::array::{AsArray, BooleanArray, RecordBatch};
use arrow::compute::{filter_record_batch, interleave_record_batch};
use arrow::datatypes::TimestampMicrosecondType;
use arrow::error::ArrowError;

/// The event-time column of the events schema.
const TIMESTAMP_COLUMN: usize = 2;

fn times(batch: &RecordBatch) -> &[i64] {
    batch
        .column(TIMESTAMP_COLUMN)
        .as_primitive::<TimestampMicrosecondType>()
        .values()
}

/// What the merge holds of one input.
#[derive(Debug, Default)]
struct Held {
    /// Events read but not yet handed on, in the order read.
    events: Vec<RecordBatch>,
    /// The newest event time read from the input, µs.
    newest: Option<i64>,
    ended: bool,
}

/// The merge of a replay's inputs (see the module documentation).
#[derive(Debug)]
pub struct Merge {
    inputs: Vec<Held>,
    reorder_us: i64,
    /// The newest event time handed on so far, µs.
    handed_until: i64,
    out_of_order: u64,
}

impl Merge {
    /// A merge of `inputs` inputs that may each be out of order by up to `reorder_secs`.
    pub fn new(inputs: usize, reorder_secs: u64) -> Self {
        Self {
            inputs: (0..inputs).map(|_| Held::default()).collect(),
            reorder_us: i64::try_from(reorder_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
            handed_until: i64::MIN,
            out_of_order: 0,
        }
    }

    /// The input to read next: the unfinished one furthest behind (one not yet read first); `None` once
    /// every input has ended.
    pub fn next_input(&self) -> Option<usize> {
        (0..self.inputs.len())
            .filter(|&i| !self.inputs[i].ended)
            .min_by_key(|&i| self.inputs[i].newest.unwrap_or(i64::MIN))
    }

    /// How many events of input `i` are held.
    pub fn held_rows(&self, i: usize) -> usize {
        self.inputs[i]
            .events
            .iter()
            .map(RecordBatch::num_rows)
            .sum()
    }

    /// Takes back what is held of input `i`, so that the next read of it can continue those events in one
    /// batch (a sorted input's next batch is then handed on as it is, without copying).
    pub fn take_held(&mut self, i: usize) -> Vec<RecordBatch> {
        std::mem::take(&mut self.inputs[i].events)
    }

    /// Adds events read from input `i` (after anything taken back with [`Merge::take_held`]); `ended` when
    /// the input has no more.
    pub fn push(&mut self, i: usize, events: RecordBatch, ended: bool) {
        let held = &mut self.inputs[i];
        held.ended |= ended;
        if events.num_rows() == 0 {
            return;
        }
        let ts = times(&events);
        let behind = ts.iter().filter(|&&t| t < self.handed_until).count();
        self.out_of_order += behind as u64;
        let newest = ts.iter().copied().max();
        held.newest = held.newest.max(newest);
        held.events.push(events);
    }

    /// Events that arrived behind what had already been handed on.
    pub fn out_of_order(&self) -> u64 {
        self.out_of_order
    }

    /// Takes every event at or before the frontier (everything, once every input has ended), in time order;
    /// `None` when there is none.
    pub fn ready(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        let frontier = self
            .inputs
            .iter()
            .filter(|h| !h.ended)
            .map(|h| {
                h.newest
                    .map_or(i64::MIN, |n| n.saturating_sub(self.reorder_us))
            })
            .min()
            .unwrap_or(i64::MAX);
        let mut parts = Vec::new();
        for held in &mut self.inputs {
            for events in std::mem::take(&mut held.events) {
                let (ready, kept) = split_at_frontier(events, frontier)?;
                held.events.extend(kept);
                parts.extend(ready);
            }
        }
        let batch = match parts.as_slice() {
            [] => return Ok(None),
            [one] if times(one).is_sorted() => one.clone(),
            _ => in_time_order(&parts)?,
        };
        if let Some(&last) = times(&batch).last() {
            self.handed_until = self.handed_until.max(last);
        }
        Ok(Some(batch))
    }
}

/// Splits `events` into those at or before `frontier` and the rest, each in the order read. A sorted
/// input's ready events are a prefix, cut without copying.
fn split_at_frontier(
    events: RecordBatch,
    frontier: i64,
) -> Result<(Option<RecordBatch>, Option<RecordBatch>), ArrowError> {
    let ts = times(&events);
    let ready = ts.iter().filter(|&&t| t <= frontier).count();
    let n = ts.len();
    if ready == 0 {
        return Ok((None, Some(events)));
    }
    if ready == n {
        return Ok((Some(events), None));
    }
    if ts[..ready].iter().all(|&t| t <= frontier) {
        return Ok((
            Some(events.slice(0, ready)),
            Some(events.slice(ready, n - ready)),
        ));
    }
    let mask: BooleanArray = ts.iter().map(|&t| Some(t <= frontier)).collect();
    let kept_mask: BooleanArray = ts.iter().map(|&t| Some(t > frontier)).collect();
    Ok((
        Some(filter_record_batch(&events, &mask)?),
        Some(filter_record_batch(&events, &kept_mask)?),
    ))
}

/// The events of `parts` in one batch, by event time; events of equal time keep the order of the inputs,
/// then the order read.
fn in_time_order(parts: &[RecordBatch]) -> Result<RecordBatch, ArrowError> {
    let mut order: Vec<(usize, usize)> = parts
        .iter()
        .enumerate()
        .flat_map(|(p, b)| (0..b.num_rows()).map(move |r| (p, r)))
        .collect();
    let ts: Vec<&[i64]> = parts.iter().map(times).collect();
    order.sort_by_key(|&(p, r)| ts[p][r]);
    let refs: Vec<&RecordBatch> = parts.iter().collect();
    interleave_record_batch(&refs, &order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sentra_schemas::{EventColumns, EventRef};

    /// A batch of events at `times` (seconds), each naming its input and position in `host`.
    fn batch(input: &str, times: &[i64]) -> RecordBatch {
        let mut columns = EventColumns::with_capacity(times.len());
        for (i, &t) in times.iter().enumerate() {
            let host = format!("{input}{i}");
            let original = format!("{t} {host}");
            columns.append(&EventRef {
                id: &original,
                tenant: "acme",
                timestamp_us: t * 1_000_000,
                host: &host,
                process_name: "sshd",
                process_pid: None,
                dataset: "system.auth",
                category: "authentication",
                event_type: "info",
                action: "ssh_login",
                outcome: "failure",
                user: None,
                target_user: None,
                group: None,
                source_ip: None,
                source_port: None,
                auth_method: None,
                command: None,
                message: "m",
                original: &original,
                source: input,
            });
        }
        columns.finish()
    }

    fn seconds(b: &RecordBatch) -> Vec<i64> {
        times(b).iter().map(|t| t / 1_000_000).collect()
    }

    /// Runs a merge over inputs given as batches read in turn; returns the times handed on, in order.
    fn run(inputs: Vec<Vec<Vec<i64>>>, reorder_secs: u64) -> (Vec<i64>, u64) {
        let mut reads: Vec<std::collections::VecDeque<Vec<i64>>> =
            inputs.into_iter().map(Into::into).collect();
        let mut merge = Merge::new(reads.len(), reorder_secs);
        let mut out = Vec::new();
        while let Some(i) = merge.next_input() {
            let next = reads[i].pop_front().unwrap_or_default();
            let ended = reads[i].is_empty();
            merge.push(i, batch(&i.to_string(), &next), ended);
            while let Some(b) = merge.ready().unwrap() {
                out.extend(seconds(&b));
            }
        }
        (out, merge.out_of_order())
    }

    #[test]
    fn overlapping_files_come_out_in_time_order() {
        let a = vec![vec![1, 3, 5, 7], vec![9, 11, 13]];
        let b = vec![vec![2, 4, 6], vec![8, 10, 12, 14]];
        let (out, disorder) = run(vec![a.clone(), b.clone()], 0);
        assert_eq!(out, (1..=14).collect::<Vec<_>>());
        assert_eq!(disorder, 0);
        let (out, _) = run(vec![b, a], 0);
        assert_eq!(out, (1..=14).collect::<Vec<_>>());
    }

    #[test]
    fn nearly_sorted_input_is_sorted_within_the_bound() {
        let (out, disorder) = run(vec![vec![vec![10, 8, 12, 11], vec![9, 20, 15, 30]]], 5);
        assert_eq!(out, [8, 9, 10, 11, 12, 15, 20, 30]);
        assert_eq!(disorder, 0);
        // Beyond the bound: 12 was handed on before 1 arrived, which is counted and still handed on.
        let (out, disorder) = run(vec![vec![vec![10, 12, 30], vec![1, 31]]], 5);
        assert_eq!(out, [10, 12, 1, 30, 31]);
        assert_eq!(disorder, 1);
    }

    #[test]
    fn a_sorted_input_is_cut_without_copying() {
        let mut merge = Merge::new(1, 2);
        merge.push(0, batch("a", &[1, 2, 3, 4, 5]), false);
        let ready = merge.ready().unwrap().unwrap();
        assert_eq!(seconds(&ready), [1, 2, 3]);
        let held = merge.take_held(0);
        assert_eq!(held.len(), 1);
        let held = &held[0];
        assert_eq!(seconds(held), [4, 5]);
        // The slices share the batch's buffers.
        let ptr = |b: &RecordBatch| b.column(TIMESTAMP_COLUMN).to_data().buffers()[0].as_ptr();
        assert_eq!(ptr(held) as usize - ptr(&ready) as usize, 3 * 8);
    }

    #[test]
    fn nothing_is_handed_on_until_every_input_was_read() {
        let mut merge = Merge::new(2, 0);
        assert_eq!(merge.next_input(), Some(0));
        merge.push(0, batch("a", &[5, 6]), false);
        assert!(merge.ready().unwrap().is_none());
        assert_eq!(merge.next_input(), Some(1));
        merge.push(1, batch("b", &[1, 9]), true);
        assert_eq!(seconds(&merge.ready().unwrap().unwrap()), [1, 5, 6]);
        assert_eq!(merge.next_input(), Some(0));
    }
}
