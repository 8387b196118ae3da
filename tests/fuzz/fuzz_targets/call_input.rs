//! What a caller controls in POST /v1/calls and /v1/retell/events: the
//! metadata JSON, the WAV file, the Retell event and its signature header.
//! Nothing panics, and no error message echoes a long digit run from the
//! input (a phone number must never reach an error).
#![no_main]

use callproc::{audio, call::CallMetadata, retell};
use libfuzzer_sys::fuzz_target;

fn no_long_digit_run(msg: &str) {
    let mut run = 0;
    for c in msg.chars() {
        run = if c.is_ascii_digit() { run + 1 } else { 0 };
        assert!(run < 12, "an error message carries a long digit run: {msg}");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Err(e) = CallMetadata::from_json(data) {
        no_long_digit_run(&e.to_string());
    }
    if let Ok(wav) = audio::parse_wav(data, &audio::Limits::DEFAULT) {
        let a = wav.analyze();
        assert!(a.speech_ratio >= 0.0 && a.speech_ratio <= 1.0);
        // The encoded bytes measure as their decoded samples do.
        assert_eq!(a, audio::analyze(&wav.samples(), wav.sample_rate_hz()));
    }
    if let Err(e) = retell::RetellEvent::from_json(data) {
        no_long_digit_run(&e.to_string());
    }
    let header = String::from_utf8_lossy(data);
    let _ = retell::verify(b"key", data, Some(&header), 1_700_000_000_000, 300_000);
});
