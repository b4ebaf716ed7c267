//! Security for Shadowcat, at both ends of the proxy.
//!
//! The gateway side makes an HTTP MCP endpoint an OAuth 2.1 resource server: bearer tokens
//! are taken from the `Authorization` header only, JWTs are validated against a JWKS fetched
//! over HTTPS (or introspected, for opaque tokens), RFC 9728 protected resource metadata is
//! served, and every admitted request carries a [`Principal`]. Policy rules decide which
//! methods and tools a principal may use, GCRA rate limits bound how fast, and every decision
//! is written to an audit log. The client's token never travels upstream: upstream
//! credentials come from configuration.
//!
//! The client side lets a proxy reach an OAuth-protected MCP server: discovery of the
//! protected resource and its authorization server, client registration, authorization code
//! with PKCE and RFC 8707 resource indicators, a token store readable only by its owner, and
//! refresh and step-up.

mod client;
mod error;
mod gateway;

pub use client::*;
pub use error::{Error, Result};
pub use gateway::*;
