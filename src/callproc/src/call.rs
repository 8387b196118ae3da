//! The `POST /v1/calls` model: the JSON metadata part, the processing
//! result, and the two JSON forms of a result.
//!
//! * [`CallMetadata::from_json`] validates the metadata part strictly.
//! * [`CallResult::full_json`] is the answer the caller receives (inside
//!   TLS): everything, the caller's number and the full transcript
//!   included.
//! * [`CallResult::safe_view`] is the only form allowed in logs and
//!   metrics: the number only as its keyed hash, the transcript masked.
//!
//! No error message, `Debug` or `Display` output of this module contains a
//! phone number or transcript text: JSON errors are mapped to field-level
//! messages here (serde_json's own messages can quote values), and input is
//! echoed only when it is a short identifier (see [`CallError`]).

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::audio::{Analysis, Encoding, Wav};
use crate::pii::{self, PhoneError, PhoneHasher, Region};

/// The voice agent that handled a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentType {
    /// `"sara"`.
    Sara,
    /// `"marco"`.
    Marco,
    /// `"franco"`.
    Franco,
}

impl AgentType {
    /// Every agent type, in declaration order.
    pub const ALL: [AgentType; 3] = [AgentType::Sara, AgentType::Marco, AgentType::Franco];

    /// The wire name: `"sara"`, `"marco"` or `"franco"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentType::Sara => "sara",
            AgentType::Marco => "marco",
            AgentType::Franco => "franco",
        }
    }

    /// The agent type with wire name `s` (exact, lowercase).
    pub fn from_name(s: &str) -> Option<AgentType> {
        AgentType::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for AgentType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest `call_id` / `shipment_id`, in characters.
pub const MAX_ID_LEN: usize = 128;

/// Why a `call_id` or `shipment_id` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdError {
    /// The empty string.
    Empty,
    /// More than [`MAX_ID_LEN`] characters.
    TooLong,
    /// A character other than `A-Z a-z 0-9 . _ : -`, at this (0-based)
    /// character position.
    InvalidCharacter {
        /// 0-based character position.
        position: usize,
    },
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::Empty => f.write_str("empty"),
            IdError::TooLong => write!(f, "longer than {MAX_ID_LEN} characters"),
            IdError::InvalidCharacter { position } => write!(
                f,
                "character at position {position} is not one of A-Z a-z 0-9 . _ : -"
            ),
        }
    }
}

fn check_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if let Some(position) = s
        .chars()
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        // Report length first for long garbage, position otherwise.
        if s.chars().count() > MAX_ID_LEN {
            return Err(IdError::TooLong);
        }
        return Err(IdError::InvalidCharacter { position });
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    Ok(())
}

/// `s` if it can be shown in an error message: at most `max` ASCII
/// letters, digits, `_` or `-`, with at most 4 digits (so no phone number
/// or other long number is ever echoed).
pub(crate) fn shown_identifier(s: &str, max: usize) -> Option<&str> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && s.bytes().filter(u8::is_ascii_digit).count() <= 4;
    ok.then_some(s)
}

/// The `hmac-sha256:…` of a phone number after normalisation (Italy as the
/// default region), or `"unparseable"`; never the number.
pub(crate) fn phone_pseudonym(hasher: &PhoneHasher, raw: &str) -> String {
    match pii::normalize_phone(raw, Region::It) {
        Ok(e) => hasher.hash(&e),
        Err(_) => "unparseable".to_owned(),
    }
}

/// A metadata field, by its JSON key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `call_id`.
    CallId,
    /// `shipment_id`.
    ShipmentId,
    /// `agent_type`.
    AgentType,
    /// `caller_phone`.
    CallerPhone,
    /// `language`.
    Language,
}

impl Field {
    /// Every field, in the order they are checked.
    pub const ALL: [Field; 5] = [
        Field::CallId,
        Field::ShipmentId,
        Field::AgentType,
        Field::CallerPhone,
        Field::Language,
    ];

    /// The JSON key.
    pub fn key(self) -> &'static str {
        match self {
            Field::CallId => "call_id",
            Field::ShipmentId => "shipment_id",
            Field::AgentType => "agent_type",
            Field::CallerPhone => "caller_phone",
            Field::Language => "language",
        }
    }

    fn from_key(k: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.key() == k)
    }
}

/// Why a metadata document was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// Not JSON (syntax error, truncated, trailing data, nesting too deep);
    /// where serde_json stopped.
    BadJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },
    /// JSON, but not an object.
    NotAnObject,
    /// A field is present twice.
    DuplicateField(Field),
    /// A field is not a JSON string (`null` included).
    WrongType(Field),
    /// A required field is absent.
    MissingField(Field),
    /// A key that is not one of the five fields. The key is kept only if
    /// it is a short identifier (at most 32 of `A-Z a-z 0-9 _ -`, at most
    /// 4 digits); otherwise `None`.
    UnknownField(Option<String>),
    /// `call_id` is not 1 to 128 of `A-Z a-z 0-9 . _ : -`.
    BadCallId(IdError),
    /// `shipment_id` is not 1 to 128 of `A-Z a-z 0-9 . _ : -`.
    BadShipmentId(IdError),
    /// `agent_type` is not `sara`, `marco` or `franco`. The value is kept
    /// only if it is a short identifier (at most 16 of `A-Z a-z 0-9 _ -`,
    /// at most 4 digits); otherwise `None`.
    AgentType(Option<String>),
    /// `caller_phone` is not a phone number ([`pii::normalize_phone`]).
    BadPhone(PhoneError),
    /// `language` is not a tag such as `it`, `it-IT`, `en-US`.
    BadLanguage,
}

impl CallError {
    /// A stable identifier of the error kind.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::BadJson { .. }
            | CallError::NotAnObject
            | CallError::DuplicateField(_)
            | CallError::WrongType(_) => "metadata.bad_json",
            CallError::MissingField(_) => "metadata.missing_field",
            CallError::UnknownField(_) => "metadata.unknown_field",
            CallError::BadCallId(_) => "metadata.bad_call_id",
            CallError::BadShipmentId(_) => "metadata.bad_shipment_id",
            CallError::AgentType(_) => "metadata.agent_type",
            CallError::BadPhone(_) => "metadata.bad_phone",
            CallError::BadLanguage => "metadata.bad_language",
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::BadJson { line, column } => {
                write!(f, "metadata is not valid JSON (line {line}, column {column})")
            }
            CallError::NotAnObject => f.write_str("metadata must be a JSON object"),
            CallError::DuplicateField(k) => write!(f, "field `{}` appears twice", k.key()),
            CallError::WrongType(k) => write!(f, "field `{}` must be a JSON string", k.key()),
            CallError::MissingField(k) => write!(f, "missing field `{}`", k.key()),
            CallError::UnknownField(Some(k)) => write!(
                f,
                "unknown field `{k}` (expected call_id, shipment_id, agent_type, caller_phone, language)"
            ),
            CallError::UnknownField(None) => f.write_str(
                "unknown field (expected call_id, shipment_id, agent_type, caller_phone, language)",
            ),
            CallError::BadCallId(e) => write!(f, "invalid call_id: {e}"),
            CallError::BadShipmentId(e) => write!(f, "invalid shipment_id: {e}"),
            CallError::AgentType(Some(v)) => write!(
                f,
                "invalid agent_type `{v}`: expected one of sara, marco, franco"
            ),
            CallError::AgentType(None) => {
                f.write_str("invalid agent_type: expected one of sara, marco, franco")
            }
            CallError::BadPhone(e) => write!(f, "invalid caller_phone: {e}"),
            CallError::BadLanguage => f.write_str(
                "invalid language: expected a tag such as it, it-IT, en, en-US (2-3 letter language, optional 2-letter or 3-digit region)",
            ),
        }
    }
}

impl std::error::Error for CallError {}

/// The members of a JSON object in document order, duplicates kept.
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Entries, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = m.next_entry::<String, Value>()? {
                    v.push(kv);
                }
                Ok(Entries(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Parses a JSON object keeping duplicate keys. Errors carry no message
/// from serde_json (those can quote input values), only a position.
fn object_entries(bytes: &[u8]) -> Result<Vec<(String, Value)>, CallError> {
    match serde_json::from_slice::<Entries>(bytes) {
        Ok(Entries(v)) => Ok(v),
        Err(e) if e.classify() == serde_json::error::Category::Data => Err(CallError::NotAnObject),
        Err(e) => Err(CallError::BadJson {
            line: e.line(),
            column: e.column(),
        }),
    }
}

/// A language tag: 2–3 letters, optionally `-` and a 2-letter or 3-digit
/// region; returned as lowercase language and uppercase region (`it-IT`).
fn parse_language(s: &str) -> Option<String> {
    let (lang, region) = match s.split_once('-') {
        Some((l, r)) => (l, Some(r)),
        None => (s, None),
    };
    if !(2..=3).contains(&lang.len()) || !lang.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let mut out = lang.to_ascii_lowercase();
    if let Some(r) = region {
        let letters = r.len() == 2 && r.bytes().all(|b| b.is_ascii_alphabetic());
        let digits = r.len() == 3 && r.bytes().all(|b| b.is_ascii_digit());
        if !(letters || digits) {
            return None;
        }
        out.push('-');
        out.push_str(&r.to_ascii_uppercase());
    }
    Some(out)
}

/// The metadata part of `POST /v1/calls`.
///
/// `Debug` prints everything but the phone number.
#[derive(Clone, PartialEq, Eq)]
pub struct CallMetadata {
    /// The caller's call identifier: 1 to 128 of `A-Z a-z 0-9 . _ : -`.
    pub call_id: String,
    /// The shipment the call is about: 1 to 128 of `A-Z a-z 0-9 . _ : -`.
    pub shipment_id: String,
    /// The voice agent.
    pub agent_type: AgentType,
    /// The caller's number, normalised to E.164 (`+393331234567`).
    pub caller_phone: String,
    /// The language tag, canonical case: lowercase language, uppercase
    /// region (`it`, `it-IT`, `en-US`).
    pub language: String,
}

impl fmt::Debug for CallMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallMetadata")
            .field("call_id", &self.call_id)
            .field("shipment_id", &self.shipment_id)
            .field("agent_type", &self.agent_type)
            .field("caller_phone", &format_args!("<redacted>"))
            .field("language", &self.language)
            .finish()
    }
}

impl CallMetadata {
    /// Parses and validates the metadata JSON.
    ///
    /// Strict: the document is one JSON object whose keys are exactly
    /// `call_id`, `shipment_id`, `agent_type`, `caller_phone` and
    /// `language`, each once, each a string. Checks, in order: JSON syntax,
    /// object, keys (duplicate, then unknown, then wrong type, in document
    /// order), missing fields (in the order above), then each value in the
    /// order above. `agent_type` is exact (`"sara"`, `"marco"`,
    /// `"franco"`); `caller_phone` is normalised with
    /// [`pii::normalize_phone`] for Italy and stored in E.164; `language`
    /// is stored in canonical case.
    pub fn from_json(bytes: &[u8]) -> Result<CallMetadata, CallError> {
        let entries = object_entries(bytes)?;
        let mut values: [Option<String>; 5] = Default::default();
        for (key, value) in entries {
            let Some(field) = Field::from_key(&key) else {
                return Err(CallError::UnknownField(
                    shown_identifier(&key, 32).map(str::to_owned),
                ));
            };
            let slot = values
                .get_mut(field as usize)
                .ok_or(CallError::MissingField(field))?;
            if slot.is_some() {
                return Err(CallError::DuplicateField(field));
            }
            match value {
                Value::String(s) => *slot = Some(s),
                _ => return Err(CallError::WrongType(field)),
            }
        }
        let [call_id, shipment_id, agent_type, caller_phone, language] = values;
        let call_id = call_id.ok_or(CallError::MissingField(Field::CallId))?;
        let shipment_id = shipment_id.ok_or(CallError::MissingField(Field::ShipmentId))?;
        let agent_type = agent_type.ok_or(CallError::MissingField(Field::AgentType))?;
        let caller_phone = caller_phone.ok_or(CallError::MissingField(Field::CallerPhone))?;
        let language = language.ok_or(CallError::MissingField(Field::Language))?;

        check_id(&call_id).map_err(CallError::BadCallId)?;
        check_id(&shipment_id).map_err(CallError::BadShipmentId)?;
        let agent_type = AgentType::from_name(&agent_type).ok_or_else(|| {
            CallError::AgentType(shown_identifier(&agent_type, 16).map(str::to_owned))
        })?;
        let caller_phone = pii::normalize_phone(&caller_phone, Region::It)
            .map_err(CallError::BadPhone)?
            .as_str()
            .to_owned();
        let language = parse_language(&language).ok_or(CallError::BadLanguage)?;
        Ok(CallMetadata {
            call_id,
            shipment_id,
            agent_type,
            caller_phone,
            language,
        })
    }
}

/// What the service reports about the call recording.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AudioSummary {
    /// `"pcm16"`, `"mulaw"` or `"alaw"`.
    pub encoding: &'static str,
    /// Samples per second.
    pub sample_rate_hz: u32,
    /// Duration in seconds.
    pub duration_secs: f64,
    /// RMS level in dBFS.
    pub rms_dbfs: f64,
    /// Peak level in dBFS.
    pub peak_dbfs: f64,
    /// Share (0..=1) of 20 ms frames with speech activity.
    pub speech_ratio: f64,
}

impl AudioSummary {
    /// The summary of `wav`, measured as `analysis` (normally
    /// `wav.analyze()`).
    pub fn new(wav: &Wav, analysis: &Analysis) -> AudioSummary {
        AudioSummary {
            encoding: encoding_name(wav.encoding()),
            sample_rate_hz: wav.sample_rate_hz(),
            duration_secs: analysis.duration_secs,
            rms_dbfs: analysis.rms_dbfs,
            peak_dbfs: analysis.peak_dbfs,
            speech_ratio: analysis.speech_ratio,
        }
    }

    /// The summary as a JSON object with the field names above (a
    /// non-finite number, which [`Analysis`] never produces, becomes
    /// `null`).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("encoding".into(), self.encoding.into());
        m.insert("sample_rate_hz".into(), self.sample_rate_hz.into());
        m.insert("duration_secs".into(), self.duration_secs.into());
        m.insert("rms_dbfs".into(), self.rms_dbfs.into());
        m.insert("peak_dbfs".into(), self.peak_dbfs.into());
        m.insert("speech_ratio".into(), self.speech_ratio.into());
        Value::Object(m)
    }
}

/// The [`AudioSummary::encoding`] name of an encoding.
pub fn encoding_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Pcm16 => "pcm16",
        Encoding::MuLaw => "mulaw",
        Encoding::ALaw => "alaw",
    }
}

/// A processed call.
///
/// `Debug` prints the metadata (without the phone number), the audio
/// summary, the model and the timing; not the transcript.
#[derive(Clone, PartialEq)]
pub struct CallResult {
    /// The validated metadata part.
    pub metadata: CallMetadata,
    /// The recording's format and measurements.
    pub audio: AudioSummary,
    /// The full transcript.
    pub transcript: String,
    /// The model that produced the transcript.
    pub transcript_model: String,
    /// Processing time in milliseconds.
    pub processing_ms: u64,
}

impl fmt::Debug for CallResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallResult")
            .field("metadata", &self.metadata)
            .field("audio", &self.audio)
            .field(
                "transcript",
                &format_args!("<{} chars>", self.transcript.chars().count()),
            )
            .field("transcript_model", &self.transcript_model)
            .field("processing_ms", &self.processing_ms)
            .finish()
    }
}

impl CallResult {
    fn ids(&self) -> Map<String, Value> {
        let md = &self.metadata;
        let mut m = Map::new();
        m.insert("call_id".into(), md.call_id.clone().into());
        m.insert("shipment_id".into(), md.shipment_id.clone().into());
        m.insert("agent_type".into(), md.agent_type.as_str().into());
        m.insert("language".into(), md.language.clone().into());
        m
    }

    /// The answer to the caller (sent only inside TLS), e.g.
    ///
    /// ```json
    /// {"call_id": "…", "shipment_id": "…", "agent_type": "sara",
    ///  "language": "it-IT", "caller_phone": "+393331234567",
    ///  "audio": {"encoding": "pcm16", "sample_rate_hz": 16000, …},
    ///  "transcript": "<full text>", "transcript_model": "…",
    ///  "processing_ms": 1234,
    ///  "pii": {"caller_hash": "hmac-sha256:…",
    ///          "transcript_redacted": "<pii::redact with the hasher>"}}
    /// ```
    ///
    /// `caller_hash` is `"unparseable"` if `metadata.caller_phone` (a
    /// public field) does not hold a phone number.
    pub fn full_json(&self, hasher: &PhoneHasher) -> Value {
        let mut m = self.ids();
        m.insert(
            "caller_phone".into(),
            self.metadata.caller_phone.clone().into(),
        );
        m.insert("audio".into(), self.audio.to_json());
        m.insert("transcript".into(), self.transcript.clone().into());
        m.insert(
            "transcript_model".into(),
            self.transcript_model.clone().into(),
        );
        m.insert("processing_ms".into(), self.processing_ms.into());
        let mut p = Map::new();
        p.insert(
            "caller_hash".into(),
            phone_pseudonym(hasher, &self.metadata.caller_phone).into(),
        );
        p.insert(
            "transcript_redacted".into(),
            pii::redact(&self.transcript, Some(hasher)).into(),
        );
        m.insert("pii".into(), Value::Object(p));
        Value::Object(m)
    }

    /// The form of a call that the host may see (the console): what an
    /// operator needs to follow the service, nothing that identifies a
    /// caller or a call outside the enclave. No transcript (not even its
    /// masked prefix or length), no caller hash (returned only to the
    /// authenticated client, in [`CallResult::full_json`]), no raw
    /// `call_id` or `shipment_id`: the call is named by a keyed pseudonym
    /// ([`PhoneHasher::pseudonym`]) that an operator holding the pepper can
    /// recompute from a call id, and the host cannot.
    pub fn log_view(&self, hasher: &PhoneHasher) -> Value {
        let md = &self.metadata;
        let mut m = Map::new();
        m.insert(
            "call".into(),
            hasher.pseudonym("call_id", &md.call_id).into(),
        );
        m.insert("agent_type".into(), md.agent_type.as_str().into());
        m.insert("language".into(), md.language.clone().into());
        m.insert("audio".into(), self.audio.to_json());
        m.insert(
            "transcript_model".into(),
            self.transcript_model.clone().into(),
        );
        m.insert("processing_ms".into(), self.processing_ms.into());
        Value::Object(m)
    }

    /// The only form allowed in logs and metrics:
    ///
    /// ```json
    /// {"call_id": "…", "shipment_id": "…", "agent_type": "sara",
    ///  "language": "it-IT", "caller": "hmac-sha256:…",
    ///  "audio": {…}, "transcript": "Questa è una tr... [MASKED - ENCLAVE ONLY]",
    ///  "transcript_chars": 123, "transcript_model": "…", "processing_ms": 1234}
    /// ```
    ///
    /// `caller` is the keyed hash of the number ([`PhoneHasher::hash`]),
    /// `transcript` is [`pii::mask_transcript`]. The identifiers are the
    /// caller's own (validated, not redacted).
    pub fn safe_view(&self, hasher: &PhoneHasher) -> Value {
        let mut m = self.ids();
        m.insert(
            "caller".into(),
            phone_pseudonym(hasher, &self.metadata.caller_phone).into(),
        );
        m.insert("audio".into(), self.audio.to_json());
        m.insert(
            "transcript".into(),
            pii::mask_transcript(&self.transcript).into(),
        );
        m.insert(
            "transcript_chars".into(),
            self.transcript.chars().count().into(),
        );
        m.insert(
            "transcript_model".into(),
            self.transcript_model.clone().into(),
        );
        m.insert("processing_ms".into(), self.processing_ms.into());
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages() {
        for (i, o) in [
            ("it", "it"),
            ("IT", "it"),
            ("it-it", "it-IT"),
            ("en-US", "en-US"),
            ("es-419", "es-419"),
            ("fil", "fil"),
        ] {
            assert_eq!(parse_language(i).as_deref(), Some(o), "{i}");
        }
        for i in [
            "", "i", "ital", "it-", "-IT", "it_IT", "it-I", "it-ITA", "it-IT-x", "i1", "it-1", "è",
        ] {
            assert_eq!(parse_language(i), None, "{i}");
        }
    }

    #[test]
    fn ids() {
        assert_eq!(check_id("c-1.a_b:2"), Ok(()));
        assert_eq!(check_id(""), Err(IdError::Empty));
        assert_eq!(
            check_id("ab cd"),
            Err(IdError::InvalidCharacter { position: 2 })
        );
        assert_eq!(
            check_id("èa"),
            Err(IdError::InvalidCharacter { position: 0 })
        );
        assert_eq!(check_id(&"a".repeat(128)), Ok(()));
        assert_eq!(check_id(&"a".repeat(129)), Err(IdError::TooLong));
    }

    #[test]
    fn identifiers_shown() {
        assert_eq!(shown_identifier("sarah", 16), Some("sarah"));
        assert_eq!(shown_identifier("agent2", 16), Some("agent2"));
        assert_eq!(shown_identifier("3331234567", 16), None);
        assert_eq!(shown_identifier("+39333", 16), None);
        assert_eq!(shown_identifier("a b", 16), None);
        assert_eq!(shown_identifier(&"a".repeat(17), 16), None);
        assert_eq!(shown_identifier("", 16), None);
    }
}
