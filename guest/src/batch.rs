//! Encoded rows waiting to be sent, with their sequence numbers, split into requests that
//! respect the size limit.
//!
//! The plugin's linear memory never shrinks, so the batch is laid out for its peak: rows
//! are encoded into segments that never move (a growing `Vec` of all of them would copy
//! what is encoded and hold up to twice its length at each doubling), each row keeps only
//! its end (4 bytes), and sequence numbers are kept as runs (a batch's are mostly
//! consecutive).

use std::ops::Range;

/// The size a segment starts with. Small beside a request (4 MB), large beside a row.
const SEGMENT_BYTES: usize = 256 * 1024;
/// A row is encoded straight into the last segment; a fresh one is begun when less than
/// this is spare (or the segment has reached `SEGMENT_BYTES`), so that a row rarely
/// outgrows its segment (one that does makes only its own segment grow).
const ROW_ROOM: usize = 16 * 1024;

/// Rows back to back that never span segments.
struct Segment {
    data: Vec<u8>,
    /// The batch's index of its first row.
    first_row: usize,
    /// Where its first kept row starts (rows before it were sent).
    start: usize,
}

/// Consecutive sequence numbers from `first`.
#[derive(Clone, Copy)]
struct Run {
    first: u64,
    rows: usize,
}

#[derive(Default)]
pub struct Batch {
    segments: Vec<Segment>,
    /// Per row: its end in its segment. A row of more than 4 GiB is refused before its
    /// commit: it is over the request size limit.
    ends: Vec<u32>,
    runs: Vec<Run>,
    /// Bytes of committed rows.
    committed: usize,
    /// Where the committed rows of the last segment end.
    tail_end: usize,
    /// When the oldest row arrived (monotonic nanoseconds).
    oldest_at: Option<u64>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn oldest_at(&self) -> Option<u64> {
        self.oldest_at
    }

    /// The buffer to encode the next row into; `commit` or `discard` it afterwards.
    #[inline]
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        let full = self.segments.last().is_none_or(|s| {
            s.data.capacity() - s.data.len() < ROW_ROOM || s.data.len() >= SEGMENT_BYTES
        });
        if full {
            self.begin_segment();
        }
        &mut self
            .segments
            .last_mut()
            .expect("a segment was just made")
            .data
    }

    #[cold]
    fn begin_segment(&mut self) {
        self.segments.push(Segment {
            data: Vec::with_capacity(SEGMENT_BYTES),
            first_row: self.ends.len(),
            start: 0,
        });
        self.tail_end = 0;
    }

    /// Bytes of committed rows.
    pub fn data_len(&self) -> usize {
        self.committed
    }

    /// Length of the row written since the last commit.
    pub fn pending_len(&self) -> usize {
        self.segments
            .last()
            .map_or(0, |s| s.data.len() - self.tail_end)
    }

    #[inline]
    pub fn commit(&mut self, sequence: u64, now: u64) {
        let end = self.segments.last().expect("a row was written").data.len();
        // Fits: a segment holds less than `SEGMENT_BYTES` before its last row (`buffer`),
        // and rows are refused over the request size limit (4 MB) before their commit.
        self.ends.push(end as u32);
        self.committed += end - self.tail_end;
        self.tail_end = end;
        match self.runs.last_mut() {
            Some(run) if run.first + run.rows as u64 == sequence => run.rows += 1,
            _ => self.runs.push(Run {
                first: sequence,
                rows: 1,
            }),
        }
        self.oldest_at.get_or_insert(now);
    }

    pub fn discard(&mut self) {
        let end = self.tail_end;
        if let Some(segment) = self.segments.last_mut() {
            segment.data.truncate(end);
        }
    }

    /// The segment holding `row`.
    fn segment_of(&self, row: usize) -> usize {
        // A segment left empty by a discarded row shares its `first_row` with the next one:
        // the last segment starting at or before `row` is the one that holds it.
        self.segments.partition_point(|s| s.first_row <= row) - 1
    }

    fn bytes_of(&self, segment: usize, rows: Range<usize>) -> &[u8] {
        let s = &self.segments[segment];
        let start = if rows.start == s.first_row {
            s.start
        } else {
            self.ends[rows.start - 1] as usize
        };
        &s.data[start..self.ends[rows.end - 1] as usize]
    }

    /// Consecutive row ranges, each at most `max_bytes` of data. Every row fits on its own:
    /// larger ones are refused before they are committed.
    pub fn requests(&self, max_bytes: usize) -> Vec<Range<usize>> {
        let mut requests = Vec::new();
        let (mut first, mut bytes) = (0, 0);
        for (i, segment) in self.segments.iter().enumerate() {
            let rows_end = self
                .segments
                .get(i + 1)
                .map_or(self.ends.len(), |s| s.first_row);
            let mut start = segment.start;
            let ends = &self.ends[segment.first_row..rows_end];
            for (row, &end) in (segment.first_row..).zip(ends) {
                let len = end as usize - start;
                if bytes + len > max_bytes && row > first {
                    requests.push(first..row);
                    (first, bytes) = (row, 0);
                }
                bytes += len;
                start = end as usize;
            }
        }
        if first < self.ends.len() {
            requests.push(first..self.ends.len());
        }
        requests
    }

    /// The data of `rows`, as the pieces of it that lie in one segment each.
    pub fn data_of(&self, rows: Range<usize>) -> Vec<&[u8]> {
        let mut pieces = Vec::new();
        if rows.is_empty() {
            return pieces;
        }
        let mut row = rows.start;
        let mut segment = self.segment_of(row);
        while row < rows.end {
            let next_first = self
                .segments
                .get(segment + 1)
                .map_or(usize::MAX, |s| s.first_row);
            let end = rows.end.min(next_first);
            if end > row {
                pieces.push(self.bytes_of(segment, row..end));
                row = end;
            }
            segment += 1;
        }
        pieces
    }

    pub fn sequences_of(&self, rows: Range<usize>) -> impl Iterator<Item = u64> + '_ {
        let mut skip = rows.start;
        self.runs
            .iter()
            .filter_map(move |run| {
                if skip >= run.rows {
                    skip -= run.rows;
                    return None;
                }
                let first = run.first + std::mem::take(&mut skip) as u64;
                Some(first..run.first + run.rows as u64)
            })
            .flatten()
            .take(rows.len())
    }

    /// Drops the first `count` rows (they were sent); the rest keep their arrival time.
    pub fn remove_first(&mut self, count: usize) {
        if count == 0 {
            return;
        }
        self.committed -= self
            .data_of(0..count)
            .iter()
            .map(|p| p.len())
            .sum::<usize>();
        let keep = self.segment_of(count - 1);
        let cut = self.ends[count - 1] as usize;
        self.segments.drain(..keep);
        let segment = &mut self.segments[0];
        segment.start = cut;
        segment.first_row = count;
        for s in &mut self.segments {
            s.first_row -= count;
        }
        self.ends.drain(..count);
        let mut left = count;
        let mut spent_runs = 0;
        for run in &mut self.runs {
            if run.rows <= left {
                left -= run.rows;
                spent_runs += 1;
            } else {
                run.first += left as u64;
                run.rows -= left;
                break;
            }
        }
        self.runs.drain(..spent_runs);
        if self.ends.is_empty() {
            self.oldest_at = None;
            self.segments.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_of(sizes: &[usize]) -> Batch {
        let mut batch = Batch::default();
        for (i, &size) in sizes.iter().enumerate() {
            batch
                .buffer()
                .extend(std::iter::repeat_n(b'a' + (i % 26) as u8, size));
            batch.commit(i as u64 + 100, 5);
        }
        batch
    }

    fn joined(pieces: Vec<&[u8]>) -> Vec<u8> {
        pieces.concat()
    }

    #[test]
    fn splits_so_that_no_request_exceeds_the_limit() {
        let batch = batch_of(&[4, 4, 4, 10, 1]);
        assert_eq!(batch.requests(10), vec![0..2, 2..3, 3..4, 4..5]);
        assert_eq!(batch.requests(100), vec![0..5]);
        assert_eq!(joined(batch.data_of(2..4)), b"ccccdddddddddd");
        assert_eq!(batch.sequences_of(1..3).collect::<Vec<_>>(), vec![101, 102]);
    }

    #[test]
    fn splits_a_large_batch_at_four_megabytes() {
        let limit = 4 * 1024 * 1024;
        let batch = batch_of(&vec![1000; 10_000]); // 10 MB of rows
        let requests = batch.requests(limit);
        assert_eq!(requests.len(), 3);
        for r in &requests {
            let pieces = batch.data_of(r.clone());
            assert!(pieces.len() > 1, "a request's rows span segments");
            assert!(pieces.iter().map(|p| p.len()).sum::<usize>() <= limit);
        }
        assert_eq!(requests.iter().map(|r| r.len()).sum::<usize>(), 10_000);
        assert_eq!(requests[0], 0..4194);
        assert_eq!(batch.data_len(), 10_000_000);
    }

    #[test]
    fn removing_sent_rows_keeps_the_rest_intact() {
        let mut batch = batch_of(&[2, 3, 4]);
        batch.remove_first(2);
        assert_eq!(batch.len(), 1);
        assert_eq!(joined(batch.data_of(0..1)), b"cccc");
        assert_eq!(batch.sequences_of(0..1).collect::<Vec<_>>(), vec![102]);
        assert_eq!(batch.oldest_at(), Some(5));
        assert_eq!(batch.data_len(), 4);
        batch.remove_first(1);
        assert!(batch.is_empty());
        assert_eq!(batch.oldest_at(), None);
        assert_eq!(batch.data_len(), 0);
    }

    #[test]
    fn discard_drops_only_the_uncommitted_row() {
        let mut batch = batch_of(&[2]);
        batch.buffer().extend_from_slice(b"xyz");
        assert_eq!(batch.pending_len(), 3);
        batch.discard();
        assert_eq!(joined(batch.data_of(0..1)), b"aa");
        assert_eq!(batch.pending_len(), 0);
    }

    #[test]
    fn rows_of_a_growing_batch_stay_where_they_were_written() {
        let mut batch = batch_of(&[SEGMENT_BYTES / 2]);
        let first = batch.data_of(0..1)[0].as_ptr();
        for _ in 0..400 {
            batch.buffer().extend_from_slice(&[b'z'; 10_000]);
            batch.commit(7, 5);
        }
        assert_eq!(batch.data_of(0..1)[0].as_ptr(), first);
        let reserved: usize = batch.segments.iter().map(|s| s.data.capacity()).sum();
        // The doubling of one Vec would hold up to twice the data; segments of rows under
        // `ROW_ROOM` hold at most that room more than their rows, each.
        assert!(
            reserved <= batch.data_len() + batch.segments.len() * ROW_ROOM + SEGMENT_BYTES,
            "{reserved} reserved for {} bytes",
            batch.data_len()
        );
    }

    /// A small deterministic generator, so that the model test needs no dependency.
    struct Xorshift(u64);

    impl Xorshift {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// Against a model (one `Vec` of rows): rows of any size across segments, discarded
    /// rows, gaps in the sequence numbers, sends of any part.
    #[test]
    fn behaves_as_a_list_of_rows() {
        let mut random = Xorshift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..50 {
            let mut batch = Batch::default();
            let mut model: Vec<(u64, Vec<u8>)> = Vec::new();
            let mut sequence = 0;
            for step in 0..400 {
                match random.below(10) {
                    0..=6 => {
                        let size = match random.below(20) {
                            0 => 30_000 + random.below(300_000),
                            1 => 0,
                            _ => 1 + random.below(2_000),
                        } as usize;
                        let row: Vec<u8> = (0..size).map(|i| (i + step) as u8).collect();
                        batch.buffer().extend_from_slice(&row);
                        assert_eq!(batch.pending_len(), size);
                        sequence += 1 + random.below(3) / 2;
                        if random.below(8) == 0 {
                            batch.discard();
                        } else {
                            batch.commit(sequence, step as u64);
                            model.push((sequence, row));
                        }
                    }
                    7 | 8 if !model.is_empty() => {
                        let count = 1 + random.below(model.len() as u64) as usize;
                        batch.remove_first(count);
                        model.drain(..count);
                    }
                    _ => {}
                }
                assert_eq!(batch.len(), model.len());
                let all: Vec<u8> = model.iter().flat_map(|(_, r)| r.clone()).collect();
                assert_eq!(batch.data_len(), all.len());
                if model.is_empty() {
                    continue;
                }
                let from = random.below(model.len() as u64) as usize;
                let to = from + 1 + random.below((model.len() - from) as u64) as usize;
                let expected: Vec<u8> = model[from..to]
                    .iter()
                    .flat_map(|(_, r)| r.clone())
                    .collect();
                assert_eq!(joined(batch.data_of(from..to)), expected);
                assert_eq!(
                    batch.sequences_of(from..to).collect::<Vec<_>>(),
                    model[from..to].iter().map(|(s, _)| *s).collect::<Vec<_>>()
                );
                let limit = 1 + random.below(400_000) as usize;
                let requests = batch.requests(limit);
                let mut next = 0;
                for r in requests {
                    assert_eq!(r.start, next);
                    next = r.end;
                    let bytes: usize = model[r.clone()].iter().map(|(_, row)| row.len()).sum();
                    assert!(bytes <= limit || r.len() == 1, "{bytes} over {limit}");
                    let with_next = model.get(r.end).map(|(_, row)| bytes + row.len());
                    assert!(with_next.is_none_or(|b| b > limit), "a request ended early");
                }
                assert_eq!(next, model.len());
            }
        }
    }
}
