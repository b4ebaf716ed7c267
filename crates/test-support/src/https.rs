//! HTTPS in tests: a certificate authority made for the test, a small server of JSON
//! documents (a JWKS, metadata, an introspection endpoint) that the test can change while it
//! runs and that counts what it served, and the signing keys of a test authorization server.

mod ca;
mod documents;
mod signing;

pub use ca::TestCa;
pub use documents::{DocumentReply, DocumentRequest, DocumentServer};
pub use signing::{SigningKey, hmac_token, jwks, unsigned_token};
