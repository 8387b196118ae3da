//! TDX quote v4/v5: parse never panics; what parses re-encodes to the input
//! minus its trailing padding, and the received-bytes views stay in bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tee_formats::tdx::{Quote, ReceivedQuote};

fuzz_target!(|data: &[u8]| {
    if let Ok(quote) = Quote::parse(data) {
        let encoded = quote.to_bytes().expect("a parsed quote encodes");
        assert_eq!(encoded.as_slice(), &data[..data.len() - quote.trailing_len]);
        let received = ReceivedQuote::parse(data).expect("same bytes parse again");
        assert_eq!(received.signed_bytes().len(), quote.signed_len());
        assert_eq!(received.qe_report_bytes().len(), 384);
        assert_eq!(received.meaningful_bytes(), encoded.as_slice());
    }
});
