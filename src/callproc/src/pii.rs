//! Privacy building blocks of the call-processing service: phone-number
//! normalisation (E.164), keyed pseudonymisation of phone numbers, and the
//! redacted ("safe") and masked views of a transcript.
//!
//! Everything here is pure and total: every function returns a value for any
//! input (no panics, no I/O). Scanners are hand-written and work on ASCII
//! bytes; every cut is made at an ASCII byte or at a `char` boundary, so a
//! multi-byte UTF-8 character (Italian accents) is never split.

use std::collections::BTreeMap;
use std::fmt;

use ring::hmac;

// ---------------------------------------------------------------------------
// Phone numbers
// ---------------------------------------------------------------------------

/// Region whose national numbering plan applies to numbers written without
/// an international prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Region {
    /// Italy, country code 39 (the platform's home region).
    It,
}

impl Region {
    /// The ITU-T E.164 country code, without `+`.
    pub fn country_code(self) -> &'static str {
        match self {
            Region::It => "39",
        }
    }
}

/// A phone number in E.164 form: `+` followed by 7 to 15 digits, the first
/// of which (the country code) is not `0`.
///
/// A phone number is personal data: `Debug` does not print it, and there is
/// no `Display`. Use [`E164::as_str`] where the number itself is needed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct E164(String);

impl E164 {
    /// The number, `+` included (e.g. `+393331234567`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the `+`.
    pub fn digits(&self) -> &str {
        self.0.strip_prefix('+').unwrap_or(&self.0)
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("E164(<redacted>)")
    }
}

/// Why a string is not a phone number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhoneError {
    /// No digits at all (empty or only separators).
    Empty,
    /// A character that is neither a digit, a leading `+` nor a separator
    /// (space, `-`, `.`, `/`, `(`, `)`); letters are refused.
    InvalidCharacter(char),
    /// `+` anywhere but before the first digit, or twice.
    MisplacedPlus,
    /// Fewer digits than the numbering plan allows.
    TooShort,
    /// More digits than the numbering plan allows (E.164: at most 15).
    TooLong,
    /// The country code after `+`/`00` starts with `0`.
    InvalidCountryCode,
    /// The national number does not start like an Italian number
    /// (`0` landline, `3` mobile, `8` toll-free/shared-cost/premium).
    InvalidNationalNumber,
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            PhoneError::Empty => "no digits",
            PhoneError::InvalidCharacter(_) => "invalid character in phone number",
            PhoneError::MisplacedPlus => "'+' is only allowed before the first digit",
            PhoneError::TooShort => "too few digits",
            PhoneError::TooLong => "too many digits (E.164 allows at most 15)",
            PhoneError::InvalidCountryCode => "country code cannot start with 0",
            PhoneError::InvalidNationalNumber => "not a valid national number",
        };
        f.write_str(s)
    }
}

impl std::error::Error for PhoneError {}

/// E.164 allows at most 15 digits (country code included).
const E164_MAX_DIGITS: usize = 15;
/// Shortest international number accepted (small numbering plans such as
/// +290 or +683 have 4-digit subscriber numbers: 7 digits in all).
const E164_MIN_DIGITS: usize = 7;
/// `00` + 15 digits.
const MAX_RAW_DIGITS: usize = E164_MAX_DIGITS + 2;

/// The digits of a normalised number (no `+`), on the stack.
struct Normalized {
    buf: [u8; E164_MAX_DIGITS],
    len: usize,
}

impl Normalized {
    fn from_parts(prefix: &[u8], rest: &[u8]) -> Result<Self, PhoneError> {
        let len = prefix.len() + rest.len();
        if len > E164_MAX_DIGITS {
            return Err(PhoneError::TooLong);
        }
        let mut buf = [0u8; E164_MAX_DIGITS];
        for (slot, b) in buf.iter_mut().zip(prefix.iter().chain(rest)) {
            *slot = *b;
        }
        Ok(Self { buf, len })
    }

    fn digits(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    fn to_e164(&self) -> E164 {
        let mut s = String::with_capacity(self.len + 1);
        s.push('+');
        s.extend(self.digits().iter().map(|&b| char::from(b)));
        E164(s)
    }
}

/// Normalises a phone number to E.164.
///
/// Rules implemented (Italian platform; `default_region` is the plan used
/// for numbers without an international prefix — today only [`Region::It`]):
///
/// * Surrounding whitespace is ignored. Inside, spaces (any Unicode
///   whitespace), `-`, `.`, `/`, `(` and `)` are separators and dropped.
///   Any other character — letters in particular — is refused.
/// * `+` is accepted only before the first digit (`+39 …`, `(+39) …`).
/// * International form: a leading `+` or the `00` international prefix,
///   followed by country code and number: 7 to 15 digits in all (E.164),
///   country code not starting with `0`. Other countries' numbers are
///   taken as written (no per-country plan).
/// * Italian numbers (national form, or `+39`/`0039`): the national number
///   is kept whole — Italian landlines keep their leading `0` in E.164
///   (`06 1234 5678` → `+390612345678`), unlike most other countries'
///   trunk prefixes. Accepted national numbers:
///   - `0…` landline, 6 to 11 digits;
///   - `3…` mobile, 9 or 10 digits;
///   - `8…` toll-free / shared-cost / premium (800, 803, 84x, 89x), 6 to
///     10 digits.
///
///   Anything else (short codes such as 112, `1…`, `4…`, `5…`, `7…`, `9…`)
///   is refused.
/// * A national-form number of 11–12 digits starting with `39` whose rest is
///   a valid Italian number is the country code written without `+`
///   (`393331234567` → `+393331234567`); no Italian national number is that
///   long with that prefix, so this is unambiguous.
pub fn normalize_phone(raw: &str, default_region: Region) -> Result<E164, PhoneError> {
    normalize_digits(raw, default_region).map(|n| n.to_e164())
}

fn normalize_digits(raw: &str, region: Region) -> Result<Normalized, PhoneError> {
    let s = raw.trim();
    let mut raw_digits = [0u8; MAX_RAW_DIGITS];
    let mut n = 0usize;
    let mut overflow = false;
    let mut plus = false;
    for c in s.chars() {
        match c {
            '0'..='9' => match raw_digits.get_mut(n) {
                Some(slot) => {
                    *slot = c as u8;
                    n += 1;
                }
                None => overflow = true,
            },
            '+' => {
                if n == 0 && !plus {
                    plus = true;
                } else {
                    return Err(PhoneError::MisplacedPlus);
                }
            }
            '-' | '.' | '/' | '(' | ')' => {}
            c if c.is_whitespace() => {}
            c => return Err(PhoneError::InvalidCharacter(c)),
        }
    }
    if overflow {
        return Err(PhoneError::TooLong);
    }
    let digits = raw_digits.get(..n).unwrap_or(&[]);
    if digits.is_empty() {
        return Err(PhoneError::Empty);
    }
    if plus {
        international(digits)
    } else if let Some(rest) = digits.strip_prefix(b"00") {
        international(rest)
    } else {
        national(digits, region)
    }
}

fn international(d: &[u8]) -> Result<Normalized, PhoneError> {
    match d.first() {
        None => return Err(PhoneError::TooShort),
        Some(b'0') => return Err(PhoneError::InvalidCountryCode),
        Some(_) => {}
    }
    if d.len() > E164_MAX_DIGITS {
        return Err(PhoneError::TooLong);
    }
    if let Some(nsn) = d.strip_prefix(b"39") {
        italian(nsn)?;
        return Normalized::from_parts(b"39", nsn);
    }
    if d.len() < E164_MIN_DIGITS {
        return Err(PhoneError::TooShort);
    }
    Normalized::from_parts(&[], d)
}

fn national(d: &[u8], region: Region) -> Result<Normalized, PhoneError> {
    match region {
        Region::It => {
            if (11..=12).contains(&d.len()) {
                if let Some(nsn) = d.strip_prefix(b"39") {
                    if italian(nsn).is_ok() {
                        return Normalized::from_parts(b"39", nsn);
                    }
                }
            }
            italian(d)?;
            Normalized::from_parts(b"39", d)
        }
    }
}

/// Checks an Italian national significant number (leading `0` included).
fn italian(nsn: &[u8]) -> Result<(), PhoneError> {
    let (min, max) = match nsn.first() {
        None => return Err(PhoneError::TooShort),
        Some(b'0') => (6, 11),
        Some(b'3') => (9, 10),
        Some(b'8') => (6, 10),
        Some(_) => return Err(PhoneError::InvalidNationalNumber),
    };
    if nsn.len() < min {
        Err(PhoneError::TooShort)
    } else if nsn.len() > max {
        Err(PhoneError::TooLong)
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Keyed pseudonymisation
// ---------------------------------------------------------------------------

/// Pseudonymises phone numbers with HMAC-SHA256 under a secret pepper.
///
/// Why not a plain SHA-256 of the number: the space of valid phone numbers
/// is tiny for a hash — all Italian mobiles are ~10^9–10^10 candidates, and
/// all the world's valid numbers not many more. A GPU computes billions of
/// SHA-256 per second, so hashing every candidate and matching the leaked
/// digest takes minutes; an unkeyed hash (salted or not, if the salt is
/// stored beside it) is no protection. HMAC-SHA256 keyed with a pepper that
/// never leaves the enclave (it comes from Vault) turns that enumeration
/// into guessing a 256-bit key: without the pepper, the digest reveals
/// nothing about the number, yet equal numbers still give equal digests, so
/// calls from the same caller can be linked.
///
/// The pepper should be at least 32 random bytes. The type keeps only
/// ring's HMAC key state, and its `Debug` prints nothing of it.
pub struct PhoneHasher {
    key: hmac::Key,
}

impl fmt::Debug for PhoneHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneHasher { pepper: <redacted> }")
    }
}

impl PhoneHasher {
    /// A hasher keyed with `pepper`.
    pub fn new(pepper: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, pepper),
        }
    }

    /// `hmac-sha256:` followed by the lowercase hex HMAC-SHA256 of the E.164
    /// string, `+` included (e.g. of `+393331234567`).
    pub fn hash(&self, e164: &E164) -> String {
        self.hash_bytes(e164.as_str().as_bytes())
    }

    /// A keyed pseudonym of an identifier for host-visible output (logs):
    /// `id:` and the first 16 hex digits (64 bits: enough to follow one
    /// call through the log, far too few to serve as a stored key) of the
    /// HMAC-SHA256 of `enclave-log-id-v1 \0 domain \0 id`. The prefix and
    /// domain keep it apart from the caller hashes: a log pseudonym can
    /// never be matched against a phone number's hash, nor a call id's
    /// against a shipment id's.
    pub fn pseudonym(&self, domain: &str, id: &str) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(b"enclave-log-id-v1\0");
        ctx.update(domain.as_bytes());
        ctx.update(b"\0");
        ctx.update(id.as_bytes());
        let tag = ctx.sign();
        let mut out = String::with_capacity(3 + 16);
        out.push_str("id:");
        for b in tag.as_ref().iter().take(8) {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        out
    }

    fn hash_normalized(&self, n: &Normalized) -> String {
        let mut buf = [0u8; E164_MAX_DIGITS + 1];
        buf[0] = b'+';
        let mut len = 1;
        for (slot, b) in buf.iter_mut().skip(1).zip(n.digits()) {
            *slot = *b;
            len += 1;
        }
        self.hash_bytes(buf.get(..len).unwrap_or(&[]))
    }

    fn hash_bytes(&self, msg: &[u8]) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let tag = hmac::sign(&self.key, msg);
        let mut out = String::with_capacity(12 + 64);
        out.push_str("hmac-sha256:");
        for b in tag.as_ref() {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Redaction
// ---------------------------------------------------------------------------

/// What a redacted span was. The order is the priority when two candidate
/// spans overlap (later wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Phone,
    Card,
    CodiceFiscale,
    Iban,
    Email,
}

#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
    kind: Kind,
}

/// The safe view of a transcript: personal data replaced by placeholders.
///
/// * Phone numbers — digit groups (joined by up to 3 of ` -./()`, optional
///   leading `+`) with at least 8 digits that [`normalize_phone`] accepts
///   for Italy: `[PHONE]`, or with a `hasher` the `hmac-sha256:…` of the
///   normalised number. Dates such as `03/11/2026` are not phones.
/// * E-mail addresses (`local@domain.tld`, letters-only TLD): `[EMAIL]`.
/// * IBANs: 2 letters, 2 check digits and the BBAN, single spaces between
///   groups allowed, 15–34 characters (the exact length for the usual
///   European countries), ISO 13616 mod-97 valid: `[IBAN]`.
/// * Payment cards: 13–19 digits, groups joined by spaces/dashes,
///   Luhn-valid: `[CARD]`.
/// * Italian codice fiscale: 16 characters `LLLLLLDDLDDLDDDL` (omocodia
///   letters accepted for the digits), valid month and day and check
///   character: `[CODICE_FISCALE]`.
///
/// Digit runs that pass none of these checks (an order number failing Luhn,
/// a date, an amount) are left alone. Overlaps are resolved by priority
/// (e-mail, IBAN, codice fiscale, card, phone), then length; a chosen span
/// always covers whole digit runs, never part of one.
///
/// Not covered: numbers spelled out in words ("tre tre tre…"), e-mail
/// addresses dictated as words ("chiocciola"), Italian numbers that look
/// like an order number (any 3xxxxxxxxx is taken as a mobile).
pub fn redact(text: &str, hasher: Option<&PhoneHasher>) -> String {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    find_emails(text, &mut spans);
    let iban_shaped = find_ibans(text, &mut spans);
    find_codici_fiscali(text, &mut spans);
    let groups = digit_groups(bytes);
    find_cards(bytes, &groups, &mut spans);
    let before_phones = spans.len();
    find_phones(text, &groups, &mut spans);
    // The digits of a mistyped IBAN (right shape, mod-97 fails) are not a
    // phone number, though a run of them may look like an Italian landline.
    if !iban_shaped.is_empty() {
        // Regions are in increasing start order; running maximum of ends.
        let mut max_end = Vec::with_capacity(iban_shaped.len());
        let mut m = 0;
        for &(_, e) in &iban_shaped {
            m = m.max(e);
            max_end.push(m);
        }
        let mut i = before_phones;
        while let Some(&sp) = spans.get(i) {
            let k = iban_shaped.partition_point(|&(s, _)| s <= sp.start);
            let covered = k
                .checked_sub(1)
                .and_then(|k| max_end.get(k))
                .is_some_and(|&e| sp.end <= e);
            if covered {
                spans.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    spans.sort_by(|a, b| {
        b.kind
            .cmp(&a.kind)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut chosen: BTreeMap<usize, (usize, Kind)> = BTreeMap::new();
    for sp in spans {
        let before = chosen
            .range(..=sp.start)
            .next_back()
            .is_some_and(|(_, &(end, _))| end > sp.start);
        let after = chosen
            .range(sp.start..)
            .next()
            .is_some_and(|(&start, _)| start < sp.end);
        if !before && !after {
            chosen.insert(sp.start, (sp.end, sp.kind));
        }
    }

    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (start, (end, kind)) in chosen {
        out.push_str(text.get(pos..start).unwrap_or(""));
        match kind {
            Kind::Phone => {
                let hashed = hasher.and_then(|h| {
                    let raw = text.get(start..end)?;
                    let n = normalize_digits(raw, Region::It).ok()?;
                    Some(h.hash_normalized(&n))
                });
                out.push_str(hashed.as_deref().unwrap_or("[PHONE]"));
            }
            Kind::Card => out.push_str("[CARD]"),
            Kind::CodiceFiscale => out.push_str("[CODICE_FISCALE]"),
            Kind::Iban => out.push_str("[IBAN]"),
            Kind::Email => out.push_str("[EMAIL]"),
        }
        pos = end;
    }
    out.push_str(text.get(pos..).unwrap_or(""));
    out
}

/// Maximal runs of ASCII digits, as byte ranges.
fn digit_groups(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut groups = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            groups.push((start, i));
        } else {
            i += 1;
        }
    }
    groups
}

/// Splits `groups` into chains of groups whose gaps satisfy `gap_ok`;
/// returns index ranges `[first, last]` into `groups`.
fn chains(
    bytes: &[u8],
    groups: &[(usize, usize)],
    gap_ok: fn(&[u8]) -> bool,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut first = 0;
    for i in 1..=groups.len() {
        let joined = match (groups.get(i - 1), groups.get(i)) {
            (Some(&(_, prev_end)), Some(&(start, _))) => {
                bytes.get(prev_end..start).is_some_and(gap_ok)
            }
            _ => false,
        };
        if !joined {
            out.push((first, i - 1));
            first = i;
        }
    }
    if groups.is_empty() {
        out.clear();
    }
    out
}

fn card_gap(gap: &[u8]) -> bool {
    (1..=3).contains(&gap.len()) && gap.iter().all(|&b| b == b' ' || b == b'-')
}

fn phone_gap(gap: &[u8]) -> bool {
    (1..=3).contains(&gap.len()) && gap.iter().all(|&b| b" -./()".contains(&b))
}

/// Luhn check over the concatenated digits of `groups`.
fn luhn_groups(bytes: &[u8], groups: &[(usize, usize)]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    for &(s, e) in groups.iter().rev() {
        for &b in bytes.get(s..e).unwrap_or(&[]).iter().rev() {
            let mut d = u32::from(b.wrapping_sub(b'0'));
            if double {
                d *= 2;
                if d > 9 {
                    d -= 9;
                }
            }
            sum += d;
            double = !double;
        }
    }
    sum.is_multiple_of(10)
}

fn find_cards(bytes: &[u8], groups: &[(usize, usize)], spans: &mut Vec<Span>) {
    for (first, last) in chains(bytes, groups, card_gap) {
        for i in first..=last {
            let mut total = 0;
            let mut best = None;
            for j in i..=last {
                let Some(&(s, e)) = groups.get(j) else { break };
                total += e - s;
                if total > 19 {
                    break;
                }
                if total >= 13 && luhn_groups(bytes, groups.get(i..=j).unwrap_or(&[])) {
                    best = Some(j);
                }
            }
            if let (Some(j), Some(&(start, _))) = (best, groups.get(i)) {
                if let Some(&(_, end)) = groups.get(j) {
                    spans.push(Span {
                        start,
                        end,
                        kind: Kind::Card,
                    });
                }
            }
        }
    }
}

/// `d/m/yyyy`, `dd.mm.yy` and the like: three groups, same separator.
fn looks_like_date(bytes: &[u8], groups: &[(usize, usize)]) -> bool {
    let [(s0, e0), (s1, e1), (s2, e2)] = groups else {
        return false;
    };
    let sep1 = bytes.get(*e0..*s1).unwrap_or(&[]);
    let sep2 = bytes.get(*e1..*s2).unwrap_or(&[]);
    let value = |s: usize, e: usize| {
        bytes
            .get(s..e)
            .unwrap_or(&[])
            .iter()
            .fold(0u32, |v, &b| v * 10 + u32::from(b.wrapping_sub(b'0')))
    };
    sep1 == sep2
        && (sep1 == b"/" || sep1 == b"." || sep1 == b"-")
        && (1..=2).contains(&(e0 - s0))
        && (1..=2).contains(&(e1 - s1))
        && (e2 - s2 == 2 || e2 - s2 == 4)
        && (1..=31).contains(&value(*s0, *e0))
        && (1..=12).contains(&value(*s1, *e1))
}

fn find_phones(text: &str, groups: &[(usize, usize)], spans: &mut Vec<Span>) {
    let bytes = text.as_bytes();
    for (first, last) in chains(bytes, groups, phone_gap) {
        for i in first..=last {
            let Some(&(gstart, _)) = groups.get(i) else {
                continue;
            };
            let mut start = gstart;
            // A leading `+`, then an opening parenthesis: `(+39) …`, `(06) …`.
            if start > 0 && bytes.get(start - 1) == Some(&b'+') {
                start -= 1;
            }
            if start > 0 && bytes.get(start - 1) == Some(&b'(') {
                start -= 1;
            }
            let mut total = 0;
            let mut best = None;
            for j in i..=last {
                let Some(&(s, e)) = groups.get(j) else { break };
                total += e - s;
                if total > MAX_RAW_DIGITS {
                    break;
                }
                if total < 8 || looks_like_date(bytes, groups.get(i..=j).unwrap_or(&[])) {
                    continue;
                }
                let mut end = e;
                if let Some(span) = bytes.get(start..end) {
                    let open = span.iter().filter(|&&b| b == b'(').count();
                    let close = span.iter().filter(|&&b| b == b')').count();
                    if open > close && bytes.get(end) == Some(&b')') {
                        end += 1;
                    }
                }
                if text
                    .get(start..end)
                    .is_some_and(|raw| normalize_digits(raw, Region::It).is_ok())
                {
                    best = Some(end);
                }
            }
            if let Some(end) = best {
                spans.push(Span {
                    start,
                    end,
                    kind: Kind::Phone,
                });
            }
        }
    }
}

/// Characters of an e-mail local part (RFC 5322 atext and `.`), plus
/// non-ASCII letters and digits (internationalised addresses).
fn email_local_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "._%+-!#$&'*/=?^`{|}~".contains(c)
        || (!c.is_ascii() && c.is_alphanumeric())
}

fn email_domain_char(c: char) -> bool {
    c == '.' || c == '-' || c.is_alphanumeric()
}

fn find_emails(text: &str, spans: &mut Vec<Span>) {
    for (at, _) in text.match_indices('@') {
        let (Some(head), Some(tail)) = (text.get(..at), text.get(at + 1..)) else {
            continue;
        };
        let mut start = at;
        for (i, c) in head.char_indices().rev() {
            if email_local_char(c) {
                start = i;
            } else {
                break;
            }
        }
        // A local part cannot start with a dot (end of a sentence before it).
        while text.as_bytes().get(start) == Some(&b'.') && start < at {
            start += 1;
        }
        if start == at {
            continue;
        }
        let mut dlen = tail
            .char_indices()
            .find(|&(_, c)| !email_domain_char(c))
            .map_or(tail.len(), |(i, _)| i);
        let dbytes = tail.as_bytes();
        while dlen > 0 && matches!(dbytes.get(dlen - 1), Some(b'.') | Some(b'-')) {
            dlen -= 1;
        }
        let Some(domain) = tail.get(..dlen) else {
            continue;
        };
        let valid = domain.contains('.')
            && !domain.starts_with(['.', '-'])
            && !domain.contains("..")
            && domain.rsplit('.').next().is_some_and(|tld| {
                tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic)
            });
        if valid {
            spans.push(Span {
                start,
                end: at + 1 + dlen,
                kind: Kind::Email,
            });
        }
    }
}

/// IBAN lengths of the countries the platform sees most; others: 15..=34.
const IBAN_LENGTHS: &[([u8; 2], usize)] = &[
    (*b"IT", 27),
    (*b"SM", 27),
    (*b"VA", 22),
    (*b"DE", 22),
    (*b"FR", 27),
    (*b"ES", 24),
    (*b"GB", 22),
    (*b"CH", 21),
    (*b"AT", 20),
    (*b"BE", 16),
    (*b"NL", 18),
    (*b"PT", 25),
    (*b"IE", 22),
    (*b"LU", 20),
    (*b"MC", 27),
];

const IBAN_MAX: usize = 34;
const IBAN_MIN: usize = 15;

/// ISO 13616 / ISO 7064 mod-97-10 check of an uppercase alphanumeric IBAN.
fn iban_mod97_ok(iban: &[u8]) -> bool {
    if iban.len() < 5 {
        return false;
    }
    let (head, bban) = iban.split_at(4);
    let mut r = 0u32;
    for &b in bban.iter().chain(head) {
        r = match b {
            b'0'..=b'9' => (r * 10 + u32::from(b - b'0')) % 97,
            b'A'..=b'Z' => (r * 100 + u32::from(b - b'A') + 10) % 97,
            _ => return false,
        };
    }
    r == 1
}

fn prev_char_is_alnum(text: &str, i: usize) -> bool {
    text.get(..i)
        .and_then(|h| h.chars().next_back())
        .is_some_and(char::is_alphanumeric)
}

/// Pushes the valid IBANs; returns the byte ranges of IBAN-shaped tokens
/// (country, check digits, plausible length) that fail the mod-97 check.
fn find_ibans(text: &str, spans: &mut Vec<Span>) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut shaped = Vec::new();
    for i in 0..bytes.len() {
        let Some(head) = bytes.get(i..i + 4) else {
            break;
        };
        if !(head[0].is_ascii_alphabetic()
            && head[1].is_ascii_alphabetic()
            && head[2].is_ascii_digit()
            && head[3].is_ascii_digit())
            || prev_char_is_alnum(text, i)
        {
            continue;
        }
        let cc = [head[0].to_ascii_uppercase(), head[1].to_ascii_uppercase()];
        let want = IBAN_LENGTHS.iter().find(|(c, _)| *c == cc).map(|&(_, l)| l);
        // Collect up to 34 characters; remember where each group ends.
        let mut buf = [0u8; IBAN_MAX];
        let mut n = 0;
        // (chars, byte end) where each group ends.
        let mut ends = [(0usize, 0usize); IBAN_MAX];
        let mut n_ends = 0;
        let mut p = i;
        loop {
            match bytes.get(p) {
                Some(&b) if b.is_ascii_alphanumeric() => {
                    let Some(slot) = buf.get_mut(n) else { break };
                    *slot = b.to_ascii_uppercase();
                    n += 1;
                    p += 1;
                    if !bytes.get(p).is_some_and(u8::is_ascii_alphanumeric) {
                        if let Some(slot) = ends.get_mut(n_ends) {
                            *slot = (n, p);
                            n_ends += 1;
                        }
                    }
                }
                Some(b' ') if n > 0 && bytes.get(p + 1).is_some_and(u8::is_ascii_alphanumeric) => {
                    p += 1;
                }
                _ => break,
            }
        }
        let len_ok = |len: usize| match want {
            Some(w) => len == w,
            None => (IBAN_MIN..=IBAN_MAX).contains(&len),
        };
        let ends = ends.get(..n_ends).unwrap_or(&[]);
        let found = ends
            .iter()
            .rev()
            .find(|&&(len, _)| len_ok(len) && buf.get(..len).is_some_and(iban_mod97_ok));
        if let Some(&(_, end)) = found {
            spans.push(Span {
                start: i,
                end,
                kind: Kind::Iban,
            });
        } else if let Some(&(_, end)) = ends.iter().rev().find(|&&(len, _)| len_ok(len)) {
            shaped.push((i, end));
        }
    }
    shaped
}

/// Omocodia: letters replacing digits when two people share a code.
const OMOCODIA: &[u8; 10] = b"LMNPQRSTUV";
/// Month letters A=Jan … T=Dec.
const CF_MONTHS: &[u8; 12] = b"ABCDEHLMPRST";
/// Values of characters in odd positions (1st, 3rd, …) for the check
/// character; index 0..9 for digits, A..Z for letters (same table).
const CF_ODD: [u32; 26] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];

fn cf_digit(b: u8) -> Option<u32> {
    if b.is_ascii_digit() {
        Some(u32::from(b - b'0'))
    } else {
        OMOCODIA
            .iter()
            .position(|&o| o == b)
            .and_then(|p| u32::try_from(p).ok())
    }
}

/// Validates an uppercase 16-character codice fiscale: pattern, month,
/// day (1–31, women +40) and check character.
pub(crate) fn codice_fiscale_ok(cf: &[u8]) -> bool {
    let Ok(cf) = <&[u8; 16]>::try_from(cf) else {
        return false;
    };
    const LETTERS: [usize; 8] = [0, 1, 2, 3, 4, 5, 8, 11];
    const DIGITS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];
    if !LETTERS.iter().all(|&i| cf[i].is_ascii_uppercase())
        || !DIGITS.iter().all(|&i| cf_digit(cf[i]).is_some())
        || !cf[15].is_ascii_uppercase()
        || !CF_MONTHS.contains(&cf[8])
    {
        return false;
    }
    let day = cf_digit(cf[9]).unwrap_or(0) * 10 + cf_digit(cf[10]).unwrap_or(0);
    if !((1..=31).contains(&day) || (41..=71).contains(&day)) {
        return false;
    }
    let mut sum = 0u32;
    for (i, &b) in cf[..15].iter().enumerate() {
        let v = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A')
        };
        sum += if i % 2 == 0 {
            CF_ODD.get(v as usize).copied().unwrap_or(0)
        } else {
            v
        };
    }
    u32::from(cf[15] - b'A') == sum % 26
}

fn find_codici_fiscali(text: &str, spans: &mut Vec<Span>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
            i += 1;
        }
        if i - start == 16 {
            let mut cf = [0u8; 16];
            for (slot, b) in cf.iter_mut().zip(&bytes[start..i]) {
                *slot = b.to_ascii_uppercase();
            }
            if codice_fiscale_ok(&cf) {
                spans.push(Span {
                    start,
                    end: i,
                    kind: Kind::CodiceFiscale,
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Masking
// ---------------------------------------------------------------------------

/// Marker appended to every masked transcript.
pub const MASK_MARKER: &str = "... [MASKED - ENCLAVE ONLY]";

/// Number of leading characters a masked transcript keeps.
pub const MASK_PREFIX_CHARS: usize = 15;

/// The masked form of a transcript: its first 15 characters (`char`s, not
/// bytes) followed by `... [MASKED - ENCLAVE ONLY]`, also when the text is
/// shorter.
///
/// The prefix is taken from the [`redact`]ed text (no hasher), so personal
/// data at the very start ("3331234567 mi richiami") is not shown even in
/// the 15 characters; for text without personal data in its first
/// characters the result is the plain prefix:
/// `"Questa è una trascrizione..."` → `"Questa è una tr... [MASKED - ENCLAVE ONLY]"`.
pub fn mask_transcript(text: &str) -> String {
    let safe = redact(text, None);
    let mut out = String::with_capacity(MASK_PREFIX_CHARS * 4 + MASK_MARKER.len());
    out.extend(safe.chars().take(MASK_PREFIX_CHARS));
    out.push_str(MASK_MARKER);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_values() {
        let b = b"4111111111111111";
        assert!(luhn_groups(b, &[(0, 16)]));
        let b = b"4111111111111112";
        assert!(!luhn_groups(b, &[(0, 16)]));
        // Split across groups gives the same answer.
        let b = b"4111 1111 1111 1111";
        assert!(luhn_groups(b, &[(0, 4), (5, 9), (10, 14), (15, 19)]));
    }

    #[test]
    fn mod97_known_values() {
        assert!(iban_mod97_ok(b"IT60X0542811101000000123456"));
        assert!(iban_mod97_ok(b"GB82WEST12345698765432"));
        assert!(iban_mod97_ok(b"DE89370400440532013000"));
        assert!(!iban_mod97_ok(b"IT61X0542811101000000123456"));
        assert!(!iban_mod97_ok(b"IT60"));
        assert!(!iban_mod97_ok(b"IT60X05428111010000001234-6"));
    }

    #[test]
    fn codice_fiscale_check_character() {
        // RSSMRA85T10A562S: odd positions R S R 8 T 0 5 2 -> 8+12+8+19+14+1+13+5 = 80,
        // even positions S M A 5 1 A 6 -> 18+12+0+5+1+0+6 = 42; 122 mod 26 = 18 = 'S'.
        assert!(codice_fiscale_ok(b"RSSMRA85T10A562S"));
        assert!(!codice_fiscale_ok(b"RSSMRA85T10A562T"));
        // Bad month letter (F is not a month).
        assert!(!codice_fiscale_ok(b"RSSMRA85F10A562S"));
        // Wrong length.
        assert!(!codice_fiscale_ok(b"RSSMRA85T10A562"));
    }

    #[test]
    fn groups_and_chains() {
        let t = b"a 12 34-5 x 6";
        let g = digit_groups(t);
        assert_eq!(g, vec![(2, 4), (5, 7), (8, 9), (12, 13)]);
        assert_eq!(chains(t, &g, card_gap), vec![(0, 2), (3, 3)]);
        assert!(chains(b"abc", &[], card_gap).is_empty());
    }

    #[test]
    fn dates_are_not_phones() {
        assert_eq!(
            redact("il 03/11/2026 alle 10", None),
            "il 03/11/2026 alle 10"
        );
        assert_eq!(redact("nato il 05.03.1985", None), "nato il 05.03.1985");
    }

    #[test]
    fn debug_does_not_leak() {
        let h = PhoneHasher::new(b"super-secret-pepper");
        assert!(!format!("{h:?}").contains("super"));
        let e = normalize_phone("333 123 4567", Region::It).unwrap();
        assert!(!format!("{e:?}").contains("333"));
    }
}
