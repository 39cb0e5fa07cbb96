//! The native loader's shared-library check on arbitrary bytes: never
//! panics or reads out of bounds, whatever the headers claim.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = polyload::fuzzing::check_image(data);
});
