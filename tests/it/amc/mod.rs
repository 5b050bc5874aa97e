//! The AMC HTTP client, as the library and as the binary use it.

mod client;
mod docs;
