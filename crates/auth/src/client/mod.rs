//! The client side: how a proxy reaches an OAuth-protected MCP server.
//!
//! [`OAuthClient`] plugs into the HTTP outgoing transport as its
//! [`UpstreamAuthorizer`](shadowcat_transport::UpstreamAuthorizer): discovery (RFC 9728,
//! RFC 8414, OpenID Connect, the 2025-03-26 fallbacks), client registration (pre-registered,
//! client id metadata documents, RFC 7591), authorization code with PKCE (S256, `ring`) and
//! RFC 8707 resource indicators through a loopback redirect receiver, a token store readable
//! only by its owner, refresh before expiry, and step-up on `insufficient_scope`.

mod agent;
mod challenge;
mod config;
mod discover;
mod encoding;
mod flow;
mod http;
mod metadata;
mod oauth;
mod pkce;
mod receiver;
mod registration;
mod store;
mod token;

pub use agent::AuthorizeMode;
pub use challenge::AuthChallenge;
pub use config::{IdentityAssertion, OAuthClientConfig, OAuthGrant};
pub use metadata::{
    OAuthResourceMetadata, OAuthServerMetadata, resource_metadata_urls, server_metadata_urls,
};
pub use oauth::OAuthClient;
pub use pkce::{PKCE_METHOD, Pkce};
pub use store::{OAuthClientRegistration, OAuthTokenStore, OAuthTokens, StoredAuthorization};
pub use token::OAuthClientKey;
