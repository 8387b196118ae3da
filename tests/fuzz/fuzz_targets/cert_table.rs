//! SEV-SNP certificate table: parse never panics; what parses re-encodes to a
//! buffer of the same length that parses to the same table.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tee_formats::snp::CertTable;

fuzz_target!(|data: &[u8]| {
    if let Ok(table) = CertTable::parse(data) {
        let encoded = table.to_bytes();
        assert_eq!(encoded.len(), data.len());
        assert_eq!(CertTable::parse(&encoded).as_ref(), Ok(&table));
        for entry in table.entries() {
            let start = entry.offset as usize;
            assert_eq!(
                &data[start..start + entry.data.len()],
                entry.data.as_slice()
            );
        }
    }
});
