//! Tests of `callproc::multipart`: bodies captured from curl and httpx, a
//! browser-shaped body, every error, encode → parse round trips and a
//! fixed-seed mutation run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "test code: a failed unwrap is a failed test"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test code: lengths and indices of small fixtures"
)]

use callproc::multipart::{
    boundary, encode, encode_around_last, parse, random_boundary, Limits, MultipartError, Part,
};

/// `curl 7.88.1 -F 'metadata=<meta.json;type=application/json'
/// -F 'audio=@a.wav;type=audio/wav' -F 'note=ciao è'`, captured with
/// `socat TCP-LISTEN` (the audio file holds a CRLF and a `--x` line).
const CURL_CT: &str = "multipart/form-data; boundary=------------------------3edc6cd1defc403a";
const CURL_BODY: &[u8] = b"--------------------------3edc6cd1defc403a\r\n\
Content-Disposition: form-data; name=\"metadata\"\r\n\
Content-Type: application/json\r\n\
\r\n\
{\"call_id\":\"c-1\",\"shipment_id\":\"S1\",\"agent_type\":\"sara\",\"caller_phone\":\"+393331234567\",\"language\":\"it-IT\"}\r\n\
--------------------------3edc6cd1defc403a\r\n\
Content-Disposition: form-data; name=\"audio\"; filename=\"a.wav\"\r\n\
Content-Type: audio/wav\r\n\
\r\n\
RIFF\x00\x01\x02\r\n\
--x\r\n\
bin\r\n\
--------------------------3edc6cd1defc403a\r\n\
Content-Disposition: form-data; name=\"note\"\r\n\
\r\n\
ciao \xc3\xa8\r\n\
--------------------------3edc6cd1defc403a--\r\n";

/// `curl -F 'audio=@a.wav;filename="we\"ird\\na;me.wav";type=audio/x-wav'
/// -F 'empty='`: curl sends `"` as `%22` and the backslash raw.
const CURL2_CT: &str = "multipart/form-data; boundary=------------------------e66b7da3b3640b12";
const CURL2_BODY: &[u8] = b"--------------------------e66b7da3b3640b12\r\n\
Content-Disposition: form-data; name=\"audio\"; filename=\"we%22ird\\na;me.wav\"\r\n\
Content-Type: audio/x-wav\r\n\
\r\n\
RIFF\x00\x01\x02\r\n\
--x\r\n\
bin\r\n\
--------------------------e66b7da3b3640b12\r\n\
Content-Disposition: form-data; name=\"empty\"\r\n\
\r\n\
\r\n\
--------------------------e66b7da3b3640b12--\r\n";

/// httpx 0.28.1 `Request("POST", url, data={"metadata": '{"a":1}'},
/// files={"audio": ("rec.wav", b"RIFF\0\r\n--\r\n", "audio/wav")}).read()`.
const HTTPX_CT: &str = "multipart/form-data; boundary=174011ca07ba840af9a5092ca1fab26a";
const HTTPX_BODY: &[u8] = b"--174011ca07ba840af9a5092ca1fab26a\r\n\
Content-Disposition: form-data; name=\"metadata\"\r\n\
\r\n\
{\"a\":1}\r\n\
--174011ca07ba840af9a5092ca1fab26a\r\n\
Content-Disposition: form-data; name=\"audio\"; filename=\"rec.wav\"\r\n\
Content-Type: audio/wav\r\n\
\r\n\
RIFF\x00\r\n\
--\r\n\
\r\n\
--174011ca07ba840af9a5092ca1fab26a--\r\n";

fn parse_default<'a>(body: &'a [u8], b: &str) -> Result<Vec<Part<'a>>, MultipartError> {
    parse(body, b, &Limits::default())
}

#[test]
fn curl_body() {
    let b = boundary(CURL_CT).unwrap();
    assert_eq!(b, "------------------------3edc6cd1defc403a");
    let parts = parse_default(CURL_BODY, &b).unwrap();
    assert_eq!(parts.len(), 3);
    let [meta, audio, note] = &parts[..] else {
        panic!("three parts")
    };
    assert_eq!(meta.name, "metadata");
    assert_eq!(meta.filename, None);
    assert_eq!(meta.content_type.as_deref(), Some("application/json"));
    assert!(meta.body.starts_with(b"{\"call_id\":\"c-1\""));
    assert!(meta.body.ends_with(b"\"language\":\"it-IT\"}"));
    assert_eq!(audio.name, "audio");
    assert_eq!(audio.filename.as_deref(), Some("a.wav"));
    assert_eq!(audio.content_type.as_deref(), Some("audio/wav"));
    assert_eq!(audio.body, b"RIFF\x00\x01\x02\r\n--x\r\nbin");
    assert_eq!(note.name, "note");
    assert_eq!(note.content_type, None);
    assert_eq!(note.body, "ciao è".as_bytes());
    // The bodies borrow from the input.
    let range = CURL_BODY.as_ptr_range();
    assert!(range.contains(&audio.body.as_ptr()));
}

#[test]
fn curl_filename_escapes_and_empty_part() {
    let b = boundary(CURL2_CT).unwrap();
    let parts = parse_default(CURL2_BODY, &b).unwrap();
    assert_eq!(parts.len(), 2);
    // `%22` is not decoded; a backslash before `n` is kept.
    assert_eq!(parts[0].filename.as_deref(), Some("we%22ird\\na;me.wav"));
    assert_eq!(parts[0].content_type.as_deref(), Some("audio/x-wav"));
    assert_eq!(parts[1].name, "empty");
    assert_eq!(parts[1].body, b"");
}

#[test]
fn httpx_body() {
    let b = boundary(HTTPX_CT).unwrap();
    let parts = parse_default(HTTPX_BODY, &b).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].name, "metadata");
    assert_eq!(parts[0].body, b"{\"a\":1}");
    assert_eq!(parts[1].filename.as_deref(), Some("rec.wav"));
    assert_eq!(parts[1].body, b"RIFF\x00\r\n--\r\n");
}

#[test]
fn browser_shaped_body_with_preamble_padding_epilogue() {
    // Chrome's boundary style; a preamble, transport padding after a
    // delimiter, lowercase header names, a folded header, an ignored
    // header and an epilogue.
    let b = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    let body = format!(
        "This is the preamble.\r\n\
         --{b}  \t\r\n\
         content-disposition: FORM-DATA; NAME=\"metadata\"\r\n\
         CONTENT-TYPE: application/json\r\n\
         Content-Transfer-Encoding: binary\r\n\
         \r\n\
         {{}}\r\n\
         --{b}\r\n\
         Content-Disposition: form-data;\r\n \
         name=audio; filename=\"C:\\fakepath\\r\u{e8}c.wav\"\r\n\
         \r\n\
         RIFF\r\n\
         --{b}--\r\n\
         epilogue --{b}\r\n"
    );
    let parts = parse_default(body.as_bytes(), b).unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].name, "metadata");
    assert_eq!(parts[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(parts[0].body, b"{}");
    assert_eq!(parts[1].name, "audio");
    assert_eq!(
        parts[1].filename.as_deref(),
        Some("C:\\fakepath\\r\u{e8}c.wav")
    );
    assert_eq!(parts[1].body, b"RIFF");
}

#[test]
fn near_miss_delimiters_are_content() {
    let b = "abc";
    let body = b"--abc\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\
x\r\n--abcd\r\n--abc x\r\n--ab\r\n--abc\r\n\
Content-Disposition: form-data; name=\"b\"\r\n\r\ny\r\n--abc--";
    let parts = parse_default(body, b).unwrap();
    assert_eq!(parts[0].body, b"x\r\n--abcd\r\n--abc x\r\n--ab");
    assert_eq!(parts[1].body, b"y");
}

#[test]
fn empty_form() {
    assert_eq!(parse_default(b"--abc--\r\n", "abc").unwrap(), vec![]);
    assert_eq!(
        parse_default(b"preamble\r\n--abc--", "abc").unwrap(),
        vec![]
    );
}

#[test]
fn boundary_header_forms() {
    let ok: &[(&str, &str)] = &[
        ("multipart/form-data; boundary=abc", "abc"),
        ("Multipart/Form-Data; BOUNDARY=abc", "abc"),
        ("multipart/form-data;boundary=\"a b:c\"", "a b:c"),
        ("multipart/form-data; charset=utf-8; boundary=xyz", "xyz"),
        ("multipart/form-data; boundary=xyz; charset=utf-8", "xyz"),
        ("  multipart/form-data  ;  boundary = \"q\\\"\"  ", "q\""),
        (
            "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
            "----WebKitFormBoundary7MA4YWxkTrZu0gW",
        ),
    ];
    for (ct, want) in ok {
        let got = boundary(ct);
        if want.contains('"') {
            // `"` is not a bchar.
            assert_eq!(got.unwrap_err().code(), "multipart.bad_boundary", "{ct}");
        } else {
            assert_eq!(got.as_deref(), Ok(*want), "{ct}");
        }
    }
    let seventy = "a".repeat(70);
    assert_eq!(
        boundary(&format!("multipart/form-data; boundary={seventy}")).unwrap(),
        seventy
    );
    let bad: &[(&str, &str)] = &[
        ("application/json", "multipart.not_form_data"),
        ("multipart/mixed; boundary=abc", "multipart.not_form_data"),
        ("", "multipart.not_form_data"),
        ("multipart/form-data", "multipart.no_boundary"),
        (
            "multipart/form-data; charset=utf-8",
            "multipart.no_boundary",
        ),
        ("multipart/form-data; boundary=", "multipart.bad_boundary"),
        (
            "multipart/form-data; boundary=\"\"",
            "multipart.bad_boundary",
        ),
        (
            "multipart/form-data; boundary=\"abc ",
            "multipart.bad_boundary",
        ),
        (
            "multipart/form-data; boundary=\"abc \"",
            "multipart.bad_boundary",
        ),
        (
            "multipart/form-data; boundary=a;boundary=b",
            "multipart.bad_boundary",
        ),
        (
            "multipart/form-data; boundary=a\u{e8}",
            "multipart.bad_boundary",
        ),
        (
            "multipart/form-data; boundary=\"a\u{e8}\"",
            "multipart.bad_boundary",
        ),
        (
            "multipart/form-data; boundary=\"a*b\"",
            "multipart.bad_boundary",
        ),
        ("multipart/form-data; boundary", "multipart.bad_boundary"),
    ];
    for (ct, code) in bad {
        assert_eq!(boundary(ct).unwrap_err().code(), *code, "{ct}");
    }
    let long = "a".repeat(71);
    assert_eq!(
        boundary(&format!("multipart/form-data; boundary={long}"))
            .unwrap_err()
            .code(),
        "multipart.bad_boundary"
    );
}

fn part(name: &str) -> String {
    format!("--B\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\nv\r\n")
}

#[test]
fn errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "multipart.truncated"),
        (b"no delimiter here", "multipart.truncated"),
        (
            b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue",
            "multipart.truncated",
        ),
        (
            b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n--B",
            "multipart.truncated",
        ),
        (
            b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue\r\n--B\r\n",
            "multipart.truncated",
        ),
        (b"--B\r\nContent-Disposition: form-data; name=\"a\"", "multipart.truncated"),
        (b"--B\r\n\r\nv\r\n--B--", "multipart.no_name"),
        (b"--B\r\nContent-Type: text/plain\r\n\r\nv\r\n--B--", "multipart.no_name"),
        (
            b"--B\r\nContent-Disposition: form-data\r\n\r\nv\r\n--B--",
            "multipart.no_name",
        ),
        (
            b"--B\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nv\r\n--B--",
            "multipart.no_name",
        ),
        (
            b"--B\r\nContent-Disposition: form-data; filename=\"f\"\r\n\r\nv\r\n--B--",
            "multipart.no_name",
        ),
        (
            b"--B\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n--B--",
            "multipart.bad_part_headers",
        ),
        (
            b"--B\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n--B--",
            "multipart.bad_part_headers",
        ),
        (
            b"--B\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\nv\r\n--B--",
            "multipart.bad_part_headers",
        ),
        (
            b"--B\r\nContent-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b\r\n\r\nv\r\n--B--",
            "multipart.bad_part_headers",
        ),
        (
            b"--B\r\nContent-Disposition: form-data; name=a\r\nContent-Type: a/b\r\ncontent-type: c/d\r\n\r\nv\r\n--B--",
            "multipart.bad_part_headers",
        ),
        (
            b"--B\r\nContent-Disposition: form-data; name=a\r\nContent-Type:\r\n\r\nv\r\n--B--",
            "multipart.bad_part_headers",
        ),
        (
            b"--B\r\nno colon\r\n\r\nv\r\n--B--",
            "multipart.bad_part_headers",
        ),
        (
            b"--B\r\n continued\r\n\r\nv\r\n--B--",
            "multipart.bad_part_headers",
        ),
        (
            b"--B\r\nBad Name: x\r\n\r\nv\r\n--B--",
            "multipart.bad_part_headers",
        ),
        (
            b"--B\r\nContent-Disposition: form-data; name=a\nX: y\r\n\r\nv\r\n--B--",
            "multipart.bad_part_headers",
        ),
        (
            b"--B\r\nContent-Disposition: form-data; name=\"\xff\"\r\n\r\nv\r\n--B--",
            "multipart.bad_part_headers",
        ),
        (
            b"--B\r\nContent-Disposition: form-data; name=\"a\x00\"\r\n\r\nv\r\n--B--",
            "multipart.bad_part_headers",
        ),
    ];
    for (body, code) in cases {
        let e = parse_default(body, "B").unwrap_err();
        assert_eq!(e.code(), *code, "{:?}: {e}", String::from_utf8_lossy(body));
    }

    // Duplicate names, named in the message with the offset.
    let body = format!(
        "{}{}{}--B--\r\n",
        part("a"),
        part("metadata"),
        part("metadata")
    );
    let e = parse_default(body.as_bytes(), "B").unwrap_err();
    assert_eq!(e.code(), "multipart.duplicate_part");
    let offset = body
        .find("Content-Disposition: form-data; name=\"metadata\"\r\n\r\nv\r\n--B--")
        .unwrap();
    assert_eq!(
        e,
        MultipartError::DuplicatePart {
            name: "metadata".into(),
            offset
        }
    );
    assert_eq!(
        e.to_string(),
        format!("duplicate part `metadata` at byte {offset}")
    );
    // A name that is not an identifier is not echoed.
    let body = format!(
        "{}{}--B--",
        part("+39 333 1234567"),
        part("+39 333 1234567")
    );
    let e = parse_default(body.as_bytes(), "B").unwrap_err();
    assert!(!e.to_string().contains("333"), "{e}");
    assert!(!format!("{e:?}").contains("333"), "{e:?}");

    // Too many parts.
    let limits = Limits {
        max_parts: 2,
        ..Limits::default()
    };
    let two = format!("{}{}--B--", part("a"), part("b"));
    assert_eq!(parse(two.as_bytes(), "B", &limits).unwrap().len(), 2);
    let three = format!("{}{}{}--B--", part("a"), part("b"), part("c"));
    let e = parse(three.as_bytes(), "B", &limits).unwrap_err();
    assert_eq!(e, MultipartError::TooManyParts { max: 2 });
    assert_eq!(e.code(), "multipart.too_many_parts");

    // Header block over the limit (terminated or not).
    let limits = Limits {
        max_header_bytes: 64,
        ..Limits::default()
    };
    let big = format!(
        "--B\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Pad: {}\r\n\r\nv\r\n--B--",
        "p".repeat(64)
    );
    let e = parse(big.as_bytes(), "B", &limits).unwrap_err();
    assert_eq!(e.code(), "multipart.bad_part_headers");
    let exact = "--B\r\nContent-Disposition: form-data; name=\"abcdefghijklmnopqrstuvwxy\"\r\n\r\nv\r\n--B--";
    assert_eq!(exact.find("\r\n\r\n").unwrap() - 5, 64);
    assert_eq!(parse(exact.as_bytes(), "B", &limits).unwrap().len(), 1);
    let over = exact.replace("xy", "xyz");
    let e = parse(over.as_bytes(), "B", &limits).unwrap_err();
    assert_eq!(e.code(), "multipart.bad_part_headers");

    // An invalid boundary given to parse.
    assert_eq!(
        parse_default(b"--\r\n", "").unwrap_err().code(),
        "multipart.bad_boundary"
    );
}

#[test]
fn error_messages_never_contain_body_bytes() {
    let secret = "SEGRETO+393331234567";
    let bodies = [
        format!("--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n{secret}"),
        format!("--B\r\nX-{secret}: 1\r\n\r\n{secret}\r\n--B--"),
        format!("--B\r\n{secret}\r\n\r\nv\r\n--B--"),
        format!(
            "--B\r\nContent-Disposition: form-data; name=\"{secret}\"; name=x\r\n\r\nv\r\n--B--"
        ),
        secret.to_owned(),
    ];
    for body in bodies {
        let e = parse_default(body.as_bytes(), "B").unwrap_err();
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains("SEGRETO"), "{shown}");
            assert!(!shown.contains("3331234567"), "{shown}");
        }
    }
    // Debug of a part shows neither body nor filename.
    let p = Part {
        name: "audio".into(),
        filename: Some("mario-3331234567.wav".into()),
        content_type: Some("audio/wav".into()),
        body: b"SEGRETO",
    };
    let d = format!("{p:?}");
    assert!(d.contains("audio") && d.contains("<7 bytes>"), "{d}");
    assert!(!d.contains("SEGRETO") && !d.contains("3331234567"), "{d}");
}

#[test]
fn encode_then_parse_round_trips() {
    let b = random_boundary(&[0xA5; 16]);
    assert_eq!(b, format!("callproc-{}", "a5".repeat(16)));
    assert_eq!(
        boundary(&format!("multipart/form-data; boundary={b}")).unwrap(),
        b
    );
    let wav = b"RIFF\x00\x00\r\n--callproc\r\n\xff\xfe";
    let parts = vec![
        Part {
            name: "metadata".into(),
            filename: None,
            content_type: Some("application/json".into()),
            body: br#"{"call_id":"c"}"#,
        },
        Part {
            name: "audio".into(),
            filename: Some("r\u{e8}c \"1\" C:\\x.wav".into()),
            content_type: Some("audio/wav".into()),
            body: wav,
        },
        Part {
            name: "we\"ird\\name;=".into(),
            filename: Some(String::new()),
            content_type: None,
            body: b"",
        },
    ];
    let body = encode(&b, &parts);
    assert!(body.ends_with(format!("--{b}--\r\n").as_bytes()));
    let back = parse_default(&body, &b).unwrap();
    assert_eq!(back, parts);
    // Cut around the last body: the same bytes, the tail written by hand.
    let (head, tail) = encode_around_last(&b, &parts);
    assert_eq!(tail, format!("\r\n--{b}--\r\n").as_bytes());
    assert_eq!([&head[..], parts[2].body, &tail[..]].concat(), body);

    // Control characters cannot break out of the header line.
    let evil = [Part {
        name: "a\r\nContent-Disposition: form-data; name=\"b\"".into(),
        filename: Some("x\ny".into()),
        content_type: Some("text/plain\r\nX-Evil: 1".into()),
        body: b"v",
    }];
    let body = encode("B", &evil);
    let back = parse_default(&body, "B").unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(
        back[0].name,
        "a%0D%0AContent-Disposition: form-data; name=\"b\""
    );
    assert_eq!(back[0].filename.as_deref(), Some("x%0Ay"));
    assert_eq!(back[0].content_type.as_deref(), Some("text/plainX-Evil: 1"));

    // No parts.
    let body = encode("B", &[]);
    assert_eq!(body, b"--B--\r\n");
    assert_eq!(encode_around_last("B", &[]), (body.clone(), Vec::new()));
    assert_eq!(parse_default(&body, "B").unwrap(), vec![]);
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_round_trips() {
    let mut rng = Rng(0x5eed_0001);
    let alphabet: Vec<char> = "ab\"\\;= -_.è€\u{1F600}".chars().collect();
    for _ in 0..300 {
        let n = rng.below(6);
        let mut bodies = Vec::new();
        for _ in 0..n {
            let len = rng.below(200);
            let bytes: Vec<u8> = (0..len)
                .map(|_| match rng.below(4) {
                    0 => b'\r',
                    1 => b'\n',
                    2 => b'-',
                    _ => rng.next() as u8,
                })
                .collect();
            bodies.push(bytes);
        }
        let parts: Vec<Part<'_>> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let extra: String = (0..rng.below(8))
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect();
                Part {
                    name: format!("p{i}{extra}"),
                    filename: (rng.below(2) == 0).then(|| extra.clone()),
                    content_type: (rng.below(2) == 0).then(|| "application/octet-stream".into()),
                    body,
                }
            })
            .collect();
        let mut seed = [0u8; 16];
        for s in &mut seed {
            *s = rng.next() as u8;
        }
        let b = random_boundary(&seed);
        let encoded = encode(&b, &parts);
        assert_eq!(parse_default(&encoded, &b).unwrap(), parts);
        if let Some(last) = parts.last() {
            let (head, tail) = encode_around_last(&b, &parts);
            assert_eq!([&head[..], last.body, &tail[..]].concat(), encoded);
        }
    }
}

#[test]
fn mutations_never_panic() {
    let mut rng = Rng(0xC0FF_EE00_1234_5678);
    let seeds: [(&[u8], &str); 3] = [
        (CURL_BODY, "------------------------3edc6cd1defc403a"),
        (CURL2_BODY, "------------------------e66b7da3b3640b12"),
        (HTTPX_BODY, "174011ca07ba840af9a5092ca1fab26a"),
    ];
    let interesting: &[&[u8]] = &[
        b"\r\n",
        b"\r\n\r\n",
        b"--",
        b"\"",
        b"\\",
        b";",
        b"=",
        b":",
        b" ",
        b"\xff",
        b"\xc3",
        b"Content-Disposition: form-data; name=",
        b"filename=\"",
    ];
    let limits = Limits {
        max_parts: 3,
        max_header_bytes: 100,
    };
    let mut ok = 0;
    for i in 0..20_000 {
        let (seed, b) = seeds[i % seeds.len()];
        let mut body = seed.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(body.len() + 1);
            match rng.below(6) {
                0 => {
                    if at < body.len() {
                        body[at] ^= 1 << rng.below(8);
                    }
                }
                1 => {
                    let end = (at + rng.below(8)).min(body.len());
                    body.drain(at..end);
                }
                2 => body.truncate(at),
                3 => {
                    let ins = interesting[rng.below(interesting.len())];
                    body.splice(at..at, ins.iter().copied());
                }
                4 => {
                    let ins = format!("\r\n--{b}");
                    body.splice(at..at, ins.bytes());
                }
                _ => body.insert(at, rng.next() as u8),
            }
        }
        if let Ok(parts) = parse(&body, b, &limits) {
            ok += 1;
            for p in parts {
                assert!(!p.name.is_empty());
            }
        }
        // Content-Type headers: mutated too.
        let mut ct = format!("multipart/form-data; boundary=\"{b}\"").into_bytes();
        let at = rng.below(ct.len() + 1);
        let ins = interesting[rng.below(interesting.len())];
        ct.splice(at..at, ins.iter().copied());
        let _ = boundary(&String::from_utf8_lossy(&ct));
    }
    assert!(ok > 100, "some mutations still parse ({ok})");
}
