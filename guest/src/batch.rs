//! Encoded rows waiting to be sent, with their sequence numbers, split into requests that
//! respect the size limit.

use std::ops::Range;

#[derive(Default)]
pub struct Batch {
    /// Encoded rows back to back.
    data: Vec<u8>,
    /// Per row: sequence number and end offset in `data`.
    rows: Vec<(u64, usize)>,
    /// When the oldest row arrived (monotonic nanoseconds).
    oldest_at: Option<u64>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn oldest_at(&self) -> Option<u64> {
        self.oldest_at
    }

    /// The buffer to encode the next row into; `commit` or `discard` it afterwards.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Bytes of committed rows.
    pub fn data_len(&self) -> usize {
        self.committed_len()
    }

    /// Length of the row written since the last commit.
    pub fn pending_len(&self) -> usize {
        self.data.len() - self.committed_len()
    }

    pub fn commit(&mut self, sequence: u64, now: u64) {
        self.rows.push((sequence, self.data.len()));
        self.oldest_at.get_or_insert(now);
    }

    pub fn discard(&mut self) {
        let len = self.committed_len();
        self.data.truncate(len);
    }

    fn committed_len(&self) -> usize {
        self.rows.last().map_or(0, |&(_, end)| end)
    }

    fn start_of(&self, row: usize) -> usize {
        if row == 0 {
            0
        } else {
            self.rows[row - 1].1
        }
    }

    /// Consecutive row ranges, each at most `max_bytes` of data. Every row fits on its own:
    /// larger ones are refused before they are committed.
    pub fn requests(&self, max_bytes: usize) -> Vec<Range<usize>> {
        let mut requests = Vec::new();
        let mut first = 0;
        for row in 0..self.rows.len() {
            if self.rows[row].1 - self.start_of(first) > max_bytes {
                requests.push(first..row);
                first = row;
            }
        }
        if first < self.rows.len() {
            requests.push(first..self.rows.len());
        }
        requests
    }

    pub fn data_of(&self, rows: Range<usize>) -> &[u8] {
        &self.data[self.start_of(rows.start)..self.rows[rows.end - 1].1]
    }

    pub fn sequences_of(&self, rows: Range<usize>) -> impl Iterator<Item = u64> + '_ {
        self.rows[rows].iter().map(|&(seq, _)| seq)
    }

    /// Drops the first `count` rows (they were sent); the rest keep their arrival time.
    pub fn remove_first(&mut self, count: usize) {
        if count == 0 {
            return;
        }
        let cut = self.rows[count - 1].1;
        self.data.drain(..cut);
        self.rows.drain(..count);
        for row in &mut self.rows {
            row.1 -= cut;
        }
        if self.rows.is_empty() {
            self.oldest_at = None;
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

    #[test]
    fn splits_so_that_no_request_exceeds_the_limit() {
        let batch = batch_of(&[4, 4, 4, 10, 1]);
        assert_eq!(batch.requests(10), vec![0..2, 2..3, 3..4, 4..5]);
        assert_eq!(batch.requests(100), vec![0..5]);
        assert_eq!(batch.data_of(2..4), b"ccccdddddddddd");
        assert_eq!(batch.sequences_of(1..3).collect::<Vec<_>>(), vec![101, 102]);
    }

    #[test]
    fn splits_a_large_batch_at_four_megabytes() {
        let limit = 4 * 1024 * 1024;
        let batch = batch_of(&vec![1000; 10_000]); // 10 MB of rows
        let requests = batch.requests(limit);
        assert_eq!(requests.len(), 3);
        for r in &requests {
            assert!(batch.data_of(r.clone()).len() <= limit);
        }
        assert_eq!(requests.iter().map(|r| r.len()).sum::<usize>(), 10_000);
        assert_eq!(requests[0], 0..4194);
    }

    #[test]
    fn removing_sent_rows_keeps_the_rest_intact() {
        let mut batch = batch_of(&[2, 3, 4]);
        batch.remove_first(2);
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.data_of(0..1), b"cccc");
        assert_eq!(batch.oldest_at(), Some(5));
        batch.remove_first(1);
        assert!(batch.is_empty());
        assert_eq!(batch.oldest_at(), None);
    }

    #[test]
    fn discard_drops_only_the_uncommitted_row() {
        let mut batch = batch_of(&[2]);
        batch.buffer().extend_from_slice(b"xyz");
        assert_eq!(batch.pending_len(), 3);
        batch.discard();
        assert_eq!(batch.data_of(0..1), b"aa");
    }
}
