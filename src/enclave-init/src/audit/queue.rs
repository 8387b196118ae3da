//! The records signed and not yet acknowledged by the collector, oldest
//! first, bounded. Pure: no lock, no clock of its own, no I/O.

use std::collections::VecDeque;

use crate::lifecycle::clock::Mono;

/// One record waiting for the collector's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its sequence number.
    pub seq: u64,
    /// Its line (without `\n`).
    pub line: String,
    /// When it was queued (the stall deadline runs from here).
    pub queued: Mono,
}

/// The queue.
#[derive(Debug)]
pub struct Queue {
    items: VecDeque<Pending>,
    cap: usize,
}

impl Queue {
    /// An empty queue holding at most `cap` records.
    pub fn new(cap: usize) -> Queue {
        Queue {
            items: VecDeque::with_capacity(cap.min(1024)),
            cap,
        }
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The bound.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Whether another record would not fit.
    pub fn is_full(&self) -> bool {
        self.items.len() >= self.cap
    }

    /// Adds `p` at the back; gives it back when the queue is full (never
    /// evicts: what is queued stays until acknowledged).
    pub fn push(&mut self, p: Pending) -> Result<(), Pending> {
        if self.is_full() {
            return Err(p);
        }
        self.items.push_back(p);
        Ok(())
    }

    /// The collector stored every record up to `acked`: they leave.
    /// Returns how many left.
    pub fn ack(&mut self, acked: u64) -> usize {
        let before = self.items.len();
        while self.items.front().is_some_and(|p| p.seq <= acked) {
            self.items.pop_front();
        }
        before - self.items.len()
    }

    /// The oldest record waiting.
    pub fn oldest(&self) -> Option<&Pending> {
        self.items.front()
    }

    /// Up to `max` records with `seq >= from`, oldest first, as (seq, line).
    pub fn batch_from(&self, from: u64, max: usize) -> Vec<(u64, String)> {
        self.items
            .iter()
            .filter(|p| p.seq >= from)
            .take(max)
            .map(|p| (p.seq, p.line.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(seq: u64) -> Pending {
        Pending {
            seq,
            line: format!("line {seq}"),
            queued: Mono::now(),
        }
    }

    #[test]
    fn bounded_acked_in_order_and_never_evicting() {
        let mut q = Queue::new(3);
        for s in 0..3 {
            q.push(p(s)).unwrap();
        }
        assert!(q.is_full());
        let back = q.push(p(3)).unwrap_err();
        assert_eq!(back.seq, 3, "full: given back");
        assert_eq!(q.len(), 3);
        assert_eq!(q.oldest().map(|p| p.seq), Some(0), "nothing evicted");
        assert_eq!(
            q.batch_from(1, 8),
            vec![(1, "line 1".to_owned()), (2, "line 2".to_owned())]
        );
        assert_eq!(q.batch_from(0, 1), vec![(0, "line 0".to_owned())]);
        // An ack below the front changes nothing; acks remove up to and
        // including their seq.
        assert_eq!(q.ack(1), 2);
        assert_eq!(q.oldest().map(|p| p.seq), Some(2));
        assert_eq!(q.ack(1), 0);
        q.push(p(3)).unwrap();
        assert_eq!(q.ack(10), 2);
        assert_eq!(q.len(), 0);
        assert!(q.batch_from(0, 8).is_empty());
    }
}
