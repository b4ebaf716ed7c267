//! The gateway side: the resource server, policy, rate limits, audit, upstream credentials.

mod audit;
mod policy;
mod rate_limit;
mod upstream;

pub use audit::{AuditConfig, AuditEvent, AuditKind, AuditLog, AuditOutcome, DEFAULT_AUDIT_QUEUE};
pub use policy::{
    POLICY_DENIED, Policy, PolicyConfig, PolicyDecision, PolicyEffect, PolicyRuleConfig,
};
pub use rate_limit::{
    DEFAULT_MAX_KEYS, LimitConfig, RATE_LIMITED, RateLimitConfig, RateLimitScope, RateLimited,
    RateLimiter,
};
pub use upstream::{
    ClientAuthMethod, DEFAULT_MAX_CACHED_EXCHANGES, UpstreamCredentials, UpstreamCredentialsConfig,
};

mod bearer;
mod challenge;
mod failure;
mod fetch;
mod introspect;
mod jwks;
mod jwt;
mod key_set;
mod metadata;
mod principal;
mod resource_config;
mod resource_server;
mod token_cache;

pub use challenge::Challenge;
pub use failure::{AuthFailure, AuthFailureKind};
pub use principal::Principal;
pub use resource_config::{IntrospectionConfig, ResourceServerConfig};
pub use resource_server::ResourceServer;
