//! The one place where failures become gRPC status codes.
//!
//! Every crate classifies its errors into a [`Kind`] ([`longshore_error::Classify`]); handlers
//! return [`RpcError`], which any classified error converts into with `?`, and [`rpc`] turns it
//! into the `tonic::Status` the client sees. A handler that refuses a request itself says so
//! with [`RpcError::invalid_argument`] and its siblings.
//!
//! [`rpc`]: super::rpc

use std::fmt;

use longshore_error::{Classify, Kind};
use tonic::{Code, Status};

/// A failed RPC: its kind and the message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    kind: Kind,
    message: String,
}

/// The gRPC code of a kind of failure.
pub fn code_of(kind: Kind) -> Code {
    match kind {
        Kind::InvalidArgument => Code::InvalidArgument,
        Kind::NotFound => Code::NotFound,
        Kind::AlreadyExists => Code::AlreadyExists,
        Kind::FailedPrecondition => Code::FailedPrecondition,
        Kind::Unavailable => Code::Unavailable,
        Kind::DeadlineExceeded => Code::DeadlineExceeded,
        Kind::ResourceExhausted => Code::ResourceExhausted,
        Kind::Unauthenticated => Code::Unauthenticated,
        Kind::PermissionDenied => Code::PermissionDenied,
        Kind::Unimplemented => Code::Unimplemented,
        Kind::Unknown => Code::Unknown,
        Kind::Internal => Code::Internal,
    }
}

macro_rules! constructors {
    ($($(#[$doc:meta])* $name:ident => $kind:ident,)*) => {
        $(
            $(#[$doc])*
            pub fn $name(message: impl Into<String>) -> RpcError {
                RpcError::new(Kind::$kind, message)
            }
        )*
    };
}

impl RpcError {
    /// An error of `kind` saying `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> RpcError {
        RpcError {
            kind,
            message: message.into(),
        }
    }

    constructors! {
        /// The request is wrong.
        invalid_argument => InvalidArgument,
        /// What the request names does not exist.
        not_found => NotFound,
        /// What the request would make exists already.
        already_exists => AlreadyExists,
        /// The state does not allow the request now.
        failed_precondition => FailedPrecondition,
        /// A passing failure; the client may retry.
        unavailable => Unavailable,
        /// The operation ran out of time.
        deadline_exceeded => DeadlineExceeded,
        /// Out of resources.
        resource_exhausted => ResourceExhausted,
        /// Not done by Longshore.
        unimplemented => Unimplemented,
        /// The workload failed, in the runtime's words.
        unknown => Unknown,
        /// A failure that is nobody's request's fault.
        internal => Internal,
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The gRPC code the client will see.
    pub fn code(&self) -> Code {
        code_of(self.kind)
    }

    /// Its message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context: ` in front of its message.
    pub fn context(mut self, context: impl fmt::Display) -> RpcError {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every classified error of every crate converts with `?`, keeping its kind and its message.
impl<E: Classify> From<E> for RpcError {
    fn from(e: E) -> RpcError {
        RpcError::new(e.kind(), e.to_string())
    }
}

impl From<RpcError> for Status {
    fn from(e: RpcError) -> Status {
        Status::new(code_of(e.kind), e.message)
    }
}

/// Adds context to a classified error on its way into an [`RpcError`].
pub trait RpcContext<T> {
    /// On error, `context: <error>` with the error's own kind.
    fn context(self, context: impl fmt::Display) -> Result<T, RpcError>;
    /// Like [`RpcContext::context`], the context made only on error.
    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T, RpcError>;
}

impl<T, E: Into<RpcError>> RpcContext<T> for Result<T, E> {
    fn context(self, context: impl fmt::Display) -> Result<T, RpcError> {
        self.map_err(|e| e.into().context(context))
    }

    fn with_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T, RpcError> {
        self.map_err(|e| e.into().context(context()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cgroup busy")]
    struct Busy;

    impl Classify for Busy {
        fn kind(&self) -> Kind {
            Kind::Unavailable
        }
    }

    fn fails() -> Result<(), RpcError> {
        Err(Busy)?;
        Ok(())
    }

    #[test]
    fn classified_errors_keep_kind_and_message() {
        let status: Status = fails().unwrap_err().into();
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(status.message(), "cgroup busy");
    }

    #[test]
    fn context_goes_in_front() {
        let r: Result<(), Busy> = Err(Busy);
        let e = r.context("StartContainer abc").unwrap_err();
        assert_eq!(e.message(), "StartContainer abc: cgroup busy");
        assert_eq!(e.kind(), Kind::Unavailable);
    }
}
