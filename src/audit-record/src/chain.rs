//! A stream's chain state: the emitter appends signed records to it, a
//! reader follows records through it and learns the first broken link.

use crate::body::Body;
use crate::record::Record;
use crate::sig::{self, SignError};
use crate::{Sign, GENESIS_PREV};

/// A stream's position: its id, the next sequence number, the last
/// record's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    stream: String,
    next_seq: u64,
    prev: [u8; 32],
}

/// How a record fails to follow the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkError {
    /// The record belongs to another stream.
    WrongStream {
        /// The record's stream.
        got: String,
    },
    /// Records are missing before this one (`expected..got`).
    Gap {
        /// The sequence number the chain expected.
        expected: u64,
        /// The record's.
        got: u64,
    },
    /// A sequence number already seen: a duplicate, or a record out of
    /// order.
    Replayed {
        /// The sequence number the chain expected.
        expected: u64,
        /// The record's (lower).
        got: u64,
    },
    /// Right sequence number, but `prev` is not the hash of the record
    /// before it: that one, or this one, was altered or replaced.
    PrevMismatch {
        /// The record's sequence number.
        seq: u64,
    },
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::WrongStream { got } => write!(f, "record of another stream ({got})"),
            LinkError::Gap { expected, got } => {
                write!(f, "gap: records {expected}..{got} missing")
            }
            LinkError::Replayed { expected, got } => {
                write!(
                    f,
                    "seq {got} again (expected {expected}): duplicate or reordered"
                )
            }
            LinkError::PrevMismatch { seq } => {
                write!(f, "seq {seq}: prev is not the previous record's hash")
            }
        }
    }
}

impl std::error::Error for LinkError {}

impl Chain {
    /// A new stream for the key `spki` (DER SubjectPublicKeyInfo).
    pub fn new(spki: &[u8]) -> Chain {
        Chain {
            stream: sig::stream_id(spki),
            next_seq: 0,
            prev: GENESIS_PREV,
        }
    }

    /// A chain positioned after `record` (a reader resuming from a stored
    /// record it trusts).
    pub fn after(record: &Record) -> Chain {
        Chain {
            stream: record.stream.clone(),
            next_seq: record.seq.saturating_add(1),
            prev: record.hash(),
        }
    }

    /// A chain for the key `spki` positioned at `next_seq` after a record
    /// whose hash is `prev`, as a store reports them (the verifier resuming
    /// its stream after a restart; the collector's answer is unverified, and
    /// a wrong one shows as a fork or a gap in `audit verify`).
    pub fn resume(spki: &[u8], next_seq: u64, prev: [u8; 32]) -> Chain {
        Chain {
            stream: sig::stream_id(spki),
            next_seq,
            prev,
        }
    }

    /// The stream id.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The sequence number of the next record.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The last record's hash (zeros before the first).
    pub fn prev(&self) -> [u8; 32] {
        self.prev
    }

    /// Signs `body` at `time` as the stream's next record and advances.
    /// On an error the chain does not move.
    pub fn append(
        &mut self,
        body: Body,
        time: u64,
        signer: &dyn Sign,
    ) -> Result<Record, SignError> {
        body.validate().map_err(SignError::Field)?;
        if sig::stream_id(&signer.spki()) != self.stream {
            return Err(SignError::WrongKey);
        }
        let next = self.next_seq.checked_add(1).ok_or(SignError::Exhausted)?;
        let mut record = Record {
            stream: self.stream.clone(),
            seq: self.next_seq,
            prev: self.prev,
            time,
            body,
            alg: signer.alg(),
            sig: Vec::new(),
        };
        record.sig = signer
            .sign(&record.canonical_bytes())
            .ok_or(SignError::Signer)?;
        self.prev = record.hash();
        self.next_seq = next;
        Ok(record)
    }

    /// Checks that `record` is this chain's next record (stream, seq,
    /// prev) and advances past it. The signature is not checked here
    /// ([`Record::verify_sig`]). On an error the chain does not move.
    pub fn follow(&mut self, record: &Record) -> Result<(), LinkError> {
        if record.stream != self.stream {
            return Err(LinkError::WrongStream {
                got: record.stream.clone(),
            });
        }
        if record.seq > self.next_seq {
            return Err(LinkError::Gap {
                expected: self.next_seq,
                got: record.seq,
            });
        }
        if record.seq < self.next_seq {
            return Err(LinkError::Replayed {
                expected: self.next_seq,
                got: record.seq,
            });
        }
        if record.prev != self.prev {
            return Err(LinkError::PrevMismatch { seq: record.seq });
        }
        self.prev = record.hash();
        self.next_seq = self.next_seq.saturating_add(1);
        Ok(())
    }
}
