//! Retell AI webhooks: signature check, replay guard, and the sanitized
//! record of an event.
//!
//! # Signature
//!
//! As Retell's SDK does it (retell-sdk 6.2.13, `retell/lib/webhook_auth.py`,
//! checked against that package in `tests/retell_sdk.rs`): the header
//! `X-Retell-Signature` is `v=<unix ms>,d=<hex>` where `<hex>` is the
//! lowercase hex HMAC-SHA256, keyed with the Retell API key, of the request
//! body followed by the decimal timestamp; a signature is accepted when it
//! matches `v=(\d+),d=([0-9a-f]{64})` and `|now − v| ≤ 5 minutes`.
//!
//! Two details follow the SDK exactly: the signed timestamp is the
//! *parsed* value written in decimal (`v=0017…` signs `17…`), and the
//! window is inclusive. Differences: only ASCII digits are accepted in `v`
//! (Python's `\d` also matches other Unicode digits), surrounding
//! whitespace of the header value is ignored, and the body is taken as
//! bytes (the SDK takes a `str` and hashes its UTF-8; the same for any
//! UTF-8 body). The SDK's documentation verifies
//! `json.dumps(body, separators=(",", ":"), ensure_ascii=False)`, a
//! re-serialisation; we verify the raw body as received, which is the same
//! bytes when Retell sends compact JSON, as it does.
//!
//! # Events
//!
//! [`RetellEvent::from_json`] accepts `call_started`, `call_ended` and
//! `call_analyzed` (the events Retell sends by default) with a `call`
//! object following Retell's call object (`PhoneCallResponse` /
//! `WebCallResponse` in the SDK); unknown fields are ignored, since Retell
//! adds fields. [`RetellEvent::record`] is the only form to log.

use std::collections::BTreeSet;
use std::fmt;

use ring::hmac;
use serde_json::{Map, Value};

use crate::call::{phone_pseudonym, shown_identifier};
use crate::pii::{self, PhoneHasher};

/// The header carrying the signature (HTTP header names are
/// case-insensitive; this is the lowercase form).
pub const SIGNATURE_HEADER: &str = "x-retell-signature";

/// The SDK's window: 5 minutes, in milliseconds.
pub const DEFAULT_WINDOW_MS: u64 = 5 * 60 * 1000;

/// A default capacity for [`ReplayGuard`].
pub const DEFAULT_REPLAY_CAPACITY: usize = 4096;

/// Why a webhook was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetellError {
    /// No signature header (or an empty one).
    SignatureMissing,
    /// The header does not match `v=<digits>,d=<64 lowercase hex>` (or
    /// the timestamp does not fit in 64 bits).
    SignatureMalformed,
    /// The signed timestamp is more than the window away from now, in
    /// either direction.
    SignatureExpired {
        /// `|now − timestamp|`, in milliseconds.
        skew_ms: u64,
    },
    /// Well-formed and fresh, but the HMAC does not match (wrong key or
    /// changed body).
    SignatureInvalid,
    /// The same signed request was already accepted.
    Replayed,
    /// The replay guard is full of entries still inside the window; the
    /// event is refused rather than forgetting one (see [`ReplayGuard`]).
    ReplayCacheFull {
        /// The guard's capacity.
        capacity: usize,
    },
    /// Not JSON; where serde_json stopped.
    BadJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// JSON, but not an event: a fixed reason (`"event missing"`,
    /// `"call missing"`, `"call.call_id missing"`, …).
    BadEvent(&'static str),
    /// A field has the wrong JSON type.
    WrongType {
        /// The field's path, e.g. `"call.start_timestamp"`.
        field: &'static str,
    },
    /// An `event` other than `call_started`, `call_ended`, `call_analyzed`.
    /// The name is kept only if it is a short identifier (at most 32 of
    /// `A-Z a-z 0-9 _ -`, at most 4 digits).
    UnknownEvent(Option<String>),
}

impl RetellError {
    /// A stable identifier of the error kind.
    pub fn code(&self) -> &'static str {
        match self {
            RetellError::SignatureMissing => "retell.signature_missing",
            RetellError::SignatureMalformed => "retell.signature_malformed",
            RetellError::SignatureExpired { .. } => "retell.signature_expired",
            RetellError::SignatureInvalid => "retell.signature_invalid",
            RetellError::Replayed => "retell.replayed",
            RetellError::ReplayCacheFull { .. } => "retell.replay_cache_full",
            RetellError::BadJson { .. }
            | RetellError::BadEvent(_)
            | RetellError::WrongType { .. } => "retell.bad_event",
            RetellError::UnknownEvent(_) => "retell.unknown_event",
        }
    }
}

impl fmt::Display for RetellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetellError::SignatureMissing => f.write_str("missing X-Retell-Signature header"),
            RetellError::SignatureMalformed => f.write_str(
                "malformed X-Retell-Signature: expected v=<unix ms>,d=<64 lowercase hex>",
            ),
            RetellError::SignatureExpired { skew_ms } => write!(
                f,
                "X-Retell-Signature timestamp is {skew_ms} ms away from now, outside the window"
            ),
            RetellError::SignatureInvalid => f.write_str("X-Retell-Signature does not match"),
            RetellError::Replayed => f.write_str("webhook already received (replay)"),
            RetellError::ReplayCacheFull { capacity } => write!(
                f,
                "replay guard full ({capacity} recent webhooks); refusing until entries expire"
            ),
            RetellError::BadJson { line, column } => {
                write!(
                    f,
                    "webhook body is not valid JSON (line {line}, column {column})"
                )
            }
            RetellError::BadEvent(why) => write!(f, "invalid webhook event: {why}"),
            RetellError::WrongType { field } => {
                write!(f, "invalid webhook event: `{field}` has the wrong type")
            }
            RetellError::UnknownEvent(Some(e)) => write!(
                f,
                "unknown webhook event `{e}` (expected call_started, call_ended, call_analyzed)"
            ),
            RetellError::UnknownEvent(None) => f.write_str(
                "unknown webhook event (expected call_started, call_ended, call_analyzed)",
            ),
        }
    }
}

impl std::error::Error for RetellError {}

// ---------------------------------------------------------------------------
// Signature
// ---------------------------------------------------------------------------

fn signed_message(body: &[u8], ts_ms: u64) -> Vec<u8> {
    let ts = ts_ms.to_string();
    let mut msg = Vec::with_capacity(body.len() + ts.len());
    msg.extend_from_slice(body);
    msg.extend_from_slice(ts.as_bytes());
    msg
}

/// The `X-Retell-Signature` value for `body` at `ts_ms` (Unix time in
/// milliseconds): `v=<ts_ms>,d=<lowercase hex HMAC-SHA256(api_key, body ‖
/// decimal ts_ms)>`, as the SDK's `sign`.
pub fn sign(api_key: &[u8], body: &[u8], ts_ms: u64) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let key = hmac::Key::new(hmac::HMAC_SHA256, api_key);
    let tag = hmac::sign(&key, &signed_message(body, ts_ms));
    let mut s = format!("v={ts_ms},d=");
    for b in tag.as_ref() {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// A signature that [`verify`] accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Verified {
    /// The signed timestamp, Unix milliseconds.
    pub ts_ms: u64,
    /// The HMAC-SHA256 (identifies body and timestamp; not secret).
    pub digest: [u8; 32],
}

fn hex_nibble(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// `v=(\d+),d=([0-9a-f]{64})`, whole string, ASCII digits.
fn parse_header(h: &str) -> Option<(u64, [u8; 32])> {
    let rest = h.strip_prefix("v=")?;
    let (ts, hex) = rest.split_once(",d=")?;
    if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ts: u64 = ts.parse().ok()?;
    let hex = hex.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (slot, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *slot = (hex_nibble(*hi)? << 4) | hex_nibble(*lo)?;
    }
    Some((ts, digest))
}

/// Checks an `X-Retell-Signature` header value (`None`: header absent).
///
/// In order, as the SDK: the format ([`RetellError::SignatureMissing`],
/// [`RetellError::SignatureMalformed`]), the window `|now_ms − v| ≤
/// window_ms` ([`RetellError::SignatureExpired`]), then the HMAC, compared
/// in constant time by `ring::hmac::verify`
/// ([`RetellError::SignatureInvalid`]). Use [`DEFAULT_WINDOW_MS`] for the
/// SDK's 5 minutes, and a [`ReplayGuard`] with the same window.
pub fn verify(
    api_key: &[u8],
    body: &[u8],
    header: Option<&str>,
    now_ms: u64,
    window_ms: u64,
) -> Result<Verified, RetellError> {
    let h = header.map(str::trim).unwrap_or("");
    if h.is_empty() {
        return Err(RetellError::SignatureMissing);
    }
    let (ts_ms, digest) = parse_header(h).ok_or(RetellError::SignatureMalformed)?;
    let skew_ms = now_ms.abs_diff(ts_ms);
    if skew_ms > window_ms {
        return Err(RetellError::SignatureExpired { skew_ms });
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, api_key);
    hmac::verify(&key, &signed_message(body, ts_ms), &digest)
        .map_err(|_| RetellError::SignatureInvalid)?;
    Ok(Verified { ts_ms, digest })
}

// ---------------------------------------------------------------------------
// Replay guard
// ---------------------------------------------------------------------------

/// Bounded memory of accepted signatures, refusing an exact replay.
///
/// A signature is a timestamp and an HMAC of body and timestamp, so an
/// attacker who captured one webhook can replay it unchanged while its
/// timestamp is inside the window — up to `window_ms` after it (or after
/// `now`, for a timestamp in the future). The guard remembers every
/// accepted `(ts_ms, digest)` until it leaves the window, i.e. until
/// `now_ms > ts_ms + window_ms`; entries are evicted lazily, oldest
/// timestamp first.
///
/// When full of entries still inside the window, the guard **refuses** the
/// new event ([`RetellError::ReplayCacheFull`]) instead of evicting the
/// oldest. Evicting would silently reopen the replay window for the
/// evicted webhook — exactly the entries an attacker flooding the endpoint
/// would want forgotten — while refusing only costs availability: a
/// refused webhook gets a non-2xx answer and Retell retries it. Filling the
/// guard needs validly signed webhooks (only Retell or a holder of the API
/// key can make them), so size the capacity above the peak number of
/// webhooks in twice the window (calls × 3 events by default).
///
/// The memory is per process: it does not survive a restart, during which
/// webhooks of the last window could be replayed once.
#[derive(Clone, Debug)]
pub struct ReplayGuard {
    capacity: usize,
    window_ms: u64,
    seen: BTreeSet<(u64, [u8; 32])>,
}

impl ReplayGuard {
    /// A guard remembering at most `capacity` webhooks, for signatures
    /// verified with `window_ms`.
    pub fn new(capacity: usize, window_ms: u64) -> ReplayGuard {
        ReplayGuard {
            capacity,
            window_ms,
            seen: BTreeSet::new(),
        }
    }

    /// The capacity given to [`ReplayGuard::new`].
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries currently remembered (expired ones are dropped only by
    /// [`ReplayGuard::check_and_remember`]).
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Drops entries that left the window, then accepts and remembers `v`,
    /// or refuses it: [`RetellError::SignatureExpired`] if `v` itself is
    /// outside the window (a stale [`Verified`]),
    /// [`RetellError::Replayed`] if it is remembered,
    /// [`RetellError::ReplayCacheFull`] if there is no room.
    pub fn check_and_remember(&mut self, v: &Verified, now_ms: u64) -> Result<(), RetellError> {
        while let Some(&(ts, _)) = self.seen.first() {
            if ts.saturating_add(self.window_ms) < now_ms {
                self.seen.pop_first();
            } else {
                break;
            }
        }
        let skew_ms = now_ms.abs_diff(v.ts_ms);
        if skew_ms > self.window_ms {
            return Err(RetellError::SignatureExpired { skew_ms });
        }
        let key = (v.ts_ms, v.digest);
        if self.seen.contains(&key) {
            return Err(RetellError::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(RetellError::ReplayCacheFull {
                capacity: self.capacity,
            });
        }
        self.seen.insert(key);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

/// The webhook events handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `call_started`.
    CallStarted,
    /// `call_ended`.
    CallEnded,
    /// `call_analyzed`.
    CallAnalyzed,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 3] = [
        EventType::CallStarted,
        EventType::CallEnded,
        EventType::CallAnalyzed,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CallStarted => "call_started",
            EventType::CallEnded => "call_ended",
            EventType::CallAnalyzed => "call_analyzed",
        }
    }
}

/// The `call_analysis` object (post-call analysis, in `call_analyzed`).
///
/// `Debug` prints neither the summary nor the custom data.
#[derive(Clone, Default, PartialEq)]
pub struct CallAnalysis {
    /// Summary of the call (free text: may contain personal data).
    pub call_summary: Option<String>,
    /// `Negative`, `Positive`, `Neutral` or `Unknown`.
    pub user_sentiment: Option<String>,
    /// Whether the agent judged the call successful.
    pub call_successful: Option<bool>,
    /// Whether the call reached a voicemail.
    pub in_voicemail: Option<bool>,
    /// Custom analysis fields (any JSON).
    pub custom_analysis_data: Option<Value>,
}

impl fmt::Debug for CallAnalysis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallAnalysis")
            .field(
                "call_summary",
                &self
                    .call_summary
                    .as_ref()
                    .map(|_| format_args!("<redacted>")),
            )
            .field("user_sentiment", &self.user_sentiment)
            .field("call_successful", &self.call_successful)
            .field("in_voicemail", &self.in_voicemail)
            .field(
                "custom_analysis_data",
                &self
                    .custom_analysis_data
                    .as_ref()
                    .map(|_| format_args!("<redacted>")),
            )
            .finish()
    }
}

/// The `call` object of a webhook (the fields used here; the others are
/// ignored).
///
/// `Debug` prints identifiers, status and times; not the numbers, the
/// transcript or the metadata.
#[derive(Clone, PartialEq)]
pub struct RetellCall {
    /// Retell's call identifier (required, non-empty).
    pub call_id: String,
    /// The agent.
    pub agent_id: Option<String>,
    /// `phone_call` or `web_call`.
    pub call_type: Option<String>,
    /// Caller number (phone calls only).
    pub from_number: Option<String>,
    /// Called number (phone calls only).
    pub to_number: Option<String>,
    /// `inbound` or `outbound` (phone calls only).
    pub direction: Option<String>,
    /// `registered`, `not_connected`, `ongoing`, `ended` or `error`.
    pub call_status: Option<String>,
    /// Start, Unix milliseconds.
    pub start_timestamp: Option<u64>,
    /// End, Unix milliseconds.
    pub end_timestamp: Option<u64>,
    /// Why the call ended (e.g. `user_hangup`).
    pub disconnection_reason: Option<String>,
    /// The transcript.
    pub transcript: Option<String>,
    /// Post-call analysis.
    pub call_analysis: Option<CallAnalysis>,
    /// The metadata given when the call was created (any JSON).
    pub metadata: Option<Value>,
}

impl fmt::Debug for RetellCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |o: bool| o.then_some(format_args!("<redacted>"));
        f.debug_struct("RetellCall")
            .field("call_id", &self.call_id)
            .field("agent_id", &self.agent_id)
            .field("call_type", &self.call_type)
            .field("from_number", &hidden(self.from_number.is_some()))
            .field("to_number", &hidden(self.to_number.is_some()))
            .field("direction", &self.direction)
            .field("call_status", &self.call_status)
            .field("start_timestamp", &self.start_timestamp)
            .field("end_timestamp", &self.end_timestamp)
            .field("disconnection_reason", &self.disconnection_reason)
            .field("transcript", &hidden(self.transcript.is_some()))
            .field("call_analysis", &self.call_analysis)
            .field("metadata", &hidden(self.metadata.is_some()))
            .finish()
    }
}

/// A Retell webhook: `{"event": "...", "call": {...}}`.
#[derive(Clone, Debug, PartialEq)]
pub struct RetellEvent {
    /// The event.
    pub event: EventType,
    /// The call it is about.
    pub call: RetellCall,
}

fn opt_str(
    obj: &Map<String, Value>,
    key: &str,
    path: &'static str,
) -> Result<Option<String>, RetellError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(RetellError::WrongType { field: path }),
    }
}

fn opt_u64(
    obj: &Map<String, Value>,
    key: &str,
    path: &'static str,
) -> Result<Option<u64>, RetellError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or(RetellError::WrongType { field: path }),
    }
}

fn opt_bool(
    obj: &Map<String, Value>,
    key: &str,
    path: &'static str,
) -> Result<Option<bool>, RetellError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(RetellError::WrongType { field: path }),
    }
}

fn opt_any(obj: &Map<String, Value>, key: &str) -> Option<Value> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.clone()),
    }
}

impl RetellEvent {
    /// Parses a webhook body.
    ///
    /// Refused: invalid JSON or not an object ([`RetellError::BadJson`],
    /// [`RetellError::BadEvent`]); `event` missing or not a string
    /// (`BadEvent`, `WrongType`); an event other than `call_started`,
    /// `call_ended`, `call_analyzed` ([`RetellError::UnknownEvent`]);
    /// `call` missing or not an object, `call.call_id` missing or empty
    /// (`BadEvent`); a known field of the wrong type (`WrongType`;
    /// `null` counts as absent). Unknown fields are ignored. All errors are
    /// `retell.bad_event` except the unknown event; none quotes a value
    /// (only a short identifier-like event name).
    pub fn from_json(bytes: &[u8]) -> Result<RetellEvent, RetellError> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| RetellError::BadJson {
            line: e.line(),
            column: e.column(),
        })?;
        let Value::Object(top) = v else {
            return Err(RetellError::BadEvent("body is not a JSON object"));
        };
        let event = match top.get("event") {
            None | Some(Value::Null) => return Err(RetellError::BadEvent("event missing")),
            Some(Value::String(s)) => s,
            Some(_) => return Err(RetellError::WrongType { field: "event" }),
        };
        let event = EventType::ALL
            .into_iter()
            .find(|e| e.as_str() == event)
            .ok_or_else(|| {
                RetellError::UnknownEvent(shown_identifier(event, 32).map(str::to_owned))
            })?;
        let call = match top.get("call") {
            Some(Value::Object(c)) => c,
            None | Some(Value::Null) => return Err(RetellError::BadEvent("call missing")),
            Some(_) => return Err(RetellError::WrongType { field: "call" }),
        };
        let call_id = match opt_str(call, "call_id", "call.call_id")? {
            Some(id) if !id.is_empty() => id,
            _ => return Err(RetellError::BadEvent("call.call_id missing")),
        };
        let call_analysis = match call.get("call_analysis") {
            None | Some(Value::Null) => None,
            Some(Value::Object(a)) => Some(CallAnalysis {
                call_summary: opt_str(a, "call_summary", "call.call_analysis.call_summary")?,
                user_sentiment: opt_str(a, "user_sentiment", "call.call_analysis.user_sentiment")?,
                call_successful: opt_bool(
                    a,
                    "call_successful",
                    "call.call_analysis.call_successful",
                )?,
                in_voicemail: opt_bool(a, "in_voicemail", "call.call_analysis.in_voicemail")?,
                custom_analysis_data: opt_any(a, "custom_analysis_data"),
            }),
            Some(_) => {
                return Err(RetellError::WrongType {
                    field: "call.call_analysis",
                })
            }
        };
        Ok(RetellEvent {
            event,
            call: RetellCall {
                call_id,
                agent_id: opt_str(call, "agent_id", "call.agent_id")?,
                call_type: opt_str(call, "call_type", "call.call_type")?,
                from_number: opt_str(call, "from_number", "call.from_number")?,
                to_number: opt_str(call, "to_number", "call.to_number")?,
                direction: opt_str(call, "direction", "call.direction")?,
                call_status: opt_str(call, "call_status", "call.call_status")?,
                start_timestamp: opt_u64(call, "start_timestamp", "call.start_timestamp")?,
                end_timestamp: opt_u64(call, "end_timestamp", "call.end_timestamp")?,
                disconnection_reason: opt_str(
                    call,
                    "disconnection_reason",
                    "call.disconnection_reason",
                )?,
                transcript: opt_str(call, "transcript", "call.transcript")?,
                call_analysis,
                metadata: opt_any(call, "metadata"),
            },
        })
    }

    /// What of the event may go to host-visible output (logs): its kind,
    /// the call by a keyed pseudonym ([`PhoneHasher::pseudonym`], domain
    /// `retell_call_id`), the agent, enumerations of how it went
    /// (`call_type`, `direction`, `call_status`, `disconnection_reason`,
    /// `user_sentiment`, `call_successful`, `in_voicemail`) and its
    /// duration. No number nor its hash, no transcript nor its masked
    /// prefix or length, no summary (redaction finds numbers, not names),
    /// no raw call id, no start time.
    pub fn log_view(&self, hasher: &PhoneHasher) -> Value {
        let c = &self.call;
        let a = c.call_analysis.as_ref();
        let duration = c.duration_ms();
        let mut m = Map::new();
        m.insert("event".into(), self.event.as_str().into());
        m.insert(
            "call".into(),
            hasher.pseudonym("retell_call_id", &c.call_id).into(),
        );
        m.insert("agent_id".into(), token(c.agent_id.as_ref()));
        m.insert("call_type".into(), token(c.call_type.as_ref()));
        m.insert("direction".into(), token(c.direction.as_ref()));
        m.insert("call_status".into(), token(c.call_status.as_ref()));
        m.insert(
            "disconnection_reason".into(),
            token(c.disconnection_reason.as_ref()),
        );
        m.insert("duration_ms".into(), duration);
        m.insert(
            "user_sentiment".into(),
            token(a.and_then(|a| a.user_sentiment.as_ref())),
        );
        m.insert(
            "call_successful".into(),
            a.and_then(|a| a.call_successful)
                .map_or(Value::Null, Value::from),
        );
        m.insert(
            "in_voicemail".into(),
            a.and_then(|a| a.in_voicemail)
                .map_or(Value::Null, Value::from),
        );
        Value::Object(m)
    }

    /// The sanitized record of the event, returned to Retell (inside TLS,
    /// after its signature verified); never logged ([`Self::log_view`]):
    ///
    /// ```json
    /// {"event": "call_analyzed", "call_id": "…", "agent_id": "…",
    ///  "call_type": "phone_call", "direction": "inbound",
    ///  "call_status": "ended", "disconnection_reason": "user_hangup",
    ///  "start_timestamp": 1700000000000, "duration_ms": 61000,
    ///  "from": "hmac-sha256:…", "to": "hmac-sha256:…",
    ///  "transcript": "Agent: Buongior... [MASKED - ENCLAVE ONLY]",
    ///  "transcript_chars": 1234,
    ///  "call_summary": "<pii::redact with the hasher>",
    ///  "user_sentiment": "Positive", "call_successful": true,
    ///  "in_voicemail": false}
    /// ```
    ///
    /// Absent values are `null`. `duration_ms` is `end − start` when both
    /// are present and in order. `from`/`to`: the keyed hash of the number
    /// normalised with [`pii::normalize_phone`] (Italy as default region),
    /// or `"unparseable"` — never the number. `transcript`:
    /// [`pii::mask_transcript`]. `call_summary`: [`pii::redact`] with the
    /// hasher. Identifier-like strings (`call_id`, `agent_id`, `call_type`,
    /// `direction`, `call_status`, `disconnection_reason`,
    /// `user_sentiment`) are copied if at most 128 of
    /// `A-Z a-z 0-9 _ . : -`, else shown as `"invalid"`. `metadata` and
    /// `custom_analysis_data` (free-form) are left out.
    pub fn record(&self, hasher: &PhoneHasher) -> Value {
        let c = &self.call;
        let a = c.call_analysis.as_ref();
        let number = |n: Option<&String>| -> Value {
            n.map_or(Value::Null, |n| phone_pseudonym(hasher, n).into())
        };
        let duration = c.duration_ms();
        let mut m = Map::new();
        m.insert("event".into(), self.event.as_str().into());
        m.insert("call_id".into(), token(Some(&c.call_id)));
        m.insert("agent_id".into(), token(c.agent_id.as_ref()));
        m.insert("call_type".into(), token(c.call_type.as_ref()));
        m.insert("direction".into(), token(c.direction.as_ref()));
        m.insert("call_status".into(), token(c.call_status.as_ref()));
        m.insert(
            "disconnection_reason".into(),
            token(c.disconnection_reason.as_ref()),
        );
        m.insert(
            "start_timestamp".into(),
            c.start_timestamp.map_or(Value::Null, Value::from),
        );
        m.insert("duration_ms".into(), duration);
        m.insert("from".into(), number(c.from_number.as_ref()));
        m.insert("to".into(), number(c.to_number.as_ref()));
        m.insert(
            "transcript".into(),
            c.transcript
                .as_deref()
                .map_or(Value::Null, |t| pii::mask_transcript(t).into()),
        );
        m.insert(
            "transcript_chars".into(),
            c.transcript
                .as_deref()
                .map_or(Value::Null, |t| t.chars().count().into()),
        );
        m.insert(
            "call_summary".into(),
            a.and_then(|a| a.call_summary.as_deref())
                .map_or(Value::Null, |s| pii::redact(s, Some(hasher)).into()),
        );
        m.insert(
            "user_sentiment".into(),
            token(a.and_then(|a| a.user_sentiment.as_ref())),
        );
        m.insert(
            "call_successful".into(),
            a.and_then(|a| a.call_successful)
                .map_or(Value::Null, Value::from),
        );
        m.insert(
            "in_voicemail".into(),
            a.and_then(|a| a.in_voicemail)
                .map_or(Value::Null, Value::from),
        );
        Value::Object(m)
    }
}

/// An identifier-like value as logged: copied if [`is_token`], else
/// `"invalid"`; absent is `null`.
fn token(s: Option<&String>) -> Value {
    match s {
        None => Value::Null,
        Some(s) if is_token(s) => Value::String(s.clone()),
        Some(_) => Value::String("invalid".into()),
    }
}

impl RetellCall {
    /// `end − start` in milliseconds when both are present and in order,
    /// else `null`.
    fn duration_ms(&self) -> Value {
        match (self.start_timestamp, self.end_timestamp) {
            (Some(s), Some(e)) => e.checked_sub(s).map_or(Value::Null, Value::from),
            _ => Value::Null,
        }
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log view of an event whose every free-form field carries a
    /// canary names the call by its pseudonym only and holds no canary.
    #[test]
    fn the_log_view_holds_nothing_personal() {
        let body = serde_json::json!({
            "event": "call_analyzed",
            "call": {
                "call_id": "cid-canary-1", "agent_id": "agent_sara", "call_type": "phone_call",
                "direction": "inbound", "from_number": "+39 333 987 6543",
                "to_number": "+39 02 1234 5678", "call_status": "ended",
                "start_timestamp": 1_764_000_000_000u64, "end_timestamp": 1_764_000_095_000u64,
                "transcript": "Sono Mario Canarino, il mio numero è 333 987 6543",
                "metadata": {"note": "Canarino"},
                "call_analysis": {"call_summary": "Il signor Canarino chiede un richiamo",
                                  "user_sentiment": "Neutral", "call_successful": true},
            }
        })
        .to_string();
        let event = RetellEvent::from_json(body.as_bytes()).unwrap();
        let hasher = PhoneHasher::new(b"pepper-for-the-test");
        let view = event.log_view(&hasher);
        let text = view.to_string();
        for canary in [
            "canary",
            "Canarino",
            "333",
            "987",
            "6543",
            "hmac-sha256",
            "1764000000000",
        ] {
            assert!(!text.contains(canary), "{canary:?} in {text}");
        }
        assert_eq!(
            view["call"],
            hasher.pseudonym("retell_call_id", "cid-canary-1")
        );
        assert_eq!(view["duration_ms"], 95_000);
        assert_eq!(view["event"], "call_analyzed");
        // The record (Retell's own answer) still carries the summary.
        assert!(event.record(&hasher).to_string().contains("Canarino"));
    }

    #[test]
    fn header_grammar() {
        let d = "ab".repeat(32);
        assert!(parse_header(&format!("v=1,d={d}")).is_some());
        assert_eq!(
            parse_header(&format!("v=0017,d={d}")).map(|x| x.0),
            Some(17)
        );
        assert!(parse_header(&format!("v=,d={d}")).is_none());
        assert!(parse_header(&format!("v=-1,d={d}")).is_none());
        assert!(parse_header(&format!("v=+1,d={d}")).is_none());
        assert!(parse_header(&format!("v=1,d={}", "AB".repeat(32))).is_none());
        assert!(parse_header(&format!("v=1,d={d}0")).is_none());
        assert!(parse_header(&format!("v=1,d={}", &d[1..])).is_none());
        assert!(parse_header(&format!("v=99999999999999999999,d={d}")).is_none());
        assert!(parse_header(&format!("d={d},v=1")).is_none());
    }
}
