//! One error type for every AWS call: which service and operation failed, and a
//! classification the operator acts on.

use aws_sdk_glue::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_types::error::display::DisplayErrorContext;

/// What kind of failure, for backoff, status reasons and repair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Throttling or rate limits: retry later with backoff.
    Throttled,
    /// The resource does not exist (anymore).
    NotFound,
    /// Created concurrently, or exists already.
    AlreadyExists,
    /// The credentials lack a permission (see deploy/aws/operator-iam-policy.json).
    AccessDenied,
    /// The request was refused as invalid (a bad cron expression, a bad filter policy, ...).
    Invalid,
    /// A resource with our name exists but is not tagged as ours: left alone.
    NotOwned,
    /// The service could not be reached or answered with a server error.
    Unavailable,
    /// Anything else.
    Other,
}

/// A failed AWS call.
#[derive(Debug, thiserror::Error)]
#[error("{service} {operation}: {message}")]
pub struct AwsError {
    pub kind: ErrorKind,
    /// `glue`, `athena`, `sns`, `sqs`, `s3`.
    pub service: &'static str,
    /// The API operation, e.g. `CreateCrawler`.
    pub operation: &'static str,
    /// The service's error code, e.g. `ThrottlingException`.
    pub code: Option<String>,
    pub message: String,
}

impl AwsError {
    pub fn new(kind: ErrorKind, service: &'static str, operation: &'static str, message: impl Into<String>) -> Self {
        AwsError { kind, service, operation, code: None, message: message.into() }
    }

    /// Classifies an SDK error of any service.
    pub fn from_sdk<E, R>(service: &'static str, operation: &'static str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug,
    {
        let code = err.code().map(str::to_string);
        let kind = match &err {
            SdkError::ServiceError(_) => classify(code.as_deref(), err.message().unwrap_or_default()),
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
                ErrorKind::Unavailable
            }
            _ => ErrorKind::Other,
        };
        let message = match (err.code(), err.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            _ => DisplayErrorContext(&err).to_string(),
        };
        AwsError { kind, service, operation, code, message }
    }

    /// CamelCase reason for status conditions and Events.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            ErrorKind::Throttled => "AwsThrottled",
            ErrorKind::NotFound => "AwsResourceNotFound",
            ErrorKind::AlreadyExists => "AwsConflict",
            ErrorKind::AccessDenied => "AwsAccessDenied",
            ErrorKind::Invalid => "AwsInvalidRequest",
            ErrorKind::NotOwned => "AwsResourceNotOwned",
            ErrorKind::Unavailable => "AwsUnavailable",
            ErrorKind::Other => "AwsError",
        }
    }

    /// Worth retrying soon (the operator's per-object backoff decides when).
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ErrorKind::Throttled | ErrorKind::Unavailable | ErrorKind::AlreadyExists)
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }
}

/// An error code (and, where services reuse a generic code, its message) → kind.
pub fn classify(code: Option<&str>, message: &str) -> ErrorKind {
    let Some(code) = code else { return ErrorKind::Other };
    match code {
        // SNS says `Throttled`; SQS `RequestThrottled`/`OverLimit`, and `QueueDeletedRecently`
        // for a name reused within 60 s (it passes by itself).
        "ThrottlingException"
        | "Throttling"
        | "Throttled"
        | "ThrottledException"
        | "KMSThrottling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "SlowDown"
        | "RequestThrottled"
        | "OverLimit"
        | "QueueDeletedRecently"
        | "ConcurrentModificationException" => ErrorKind::Throttled,
        "EntityNotFoundException"
        | "ResourceNotFoundException"
        | "NotFound"
        | "NotFoundException"
        | "NoSuchBucket"
        | "AWS.SimpleQueueService.NonExistentQueue"
        | "QueueDoesNotExist" => ErrorKind::NotFound,
        "AlreadyExistsException" | "ResourceInUseException" | "QueueAlreadyExists" => ErrorKind::AlreadyExists,
        "AccessDeniedException"
        | "AccessDenied"
        | "AuthorizationError"
        | "UnrecognizedClientException"
        | "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken" => ErrorKind::AccessDenied,
        // Athena answers a missing workgroup or named query with InvalidRequestException.
        "InvalidRequestException" if message.to_lowercase().contains("not found") => ErrorKind::NotFound,
        "InvalidRequestException"
        | "InvalidInputException"
        | "InvalidParameter"
        | "InvalidParameterException"
        | "InvalidParameterValue"
        | "ValidationException"
        | "InvalidArgument"
        | "InvalidArgumentException"
        | "MalformedXML"
        | "UnsupportedNotification" => ErrorKind::Invalid,
        "ServiceUnavailable"
        | "InternalServiceException"
        | "InternalServerException"
        | "InternalError"
        | "InternalFailure"
        | "OperationTimeoutException" => ErrorKind::Unavailable,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(classify(Some("ThrottlingException"), ""), ErrorKind::Throttled);
        assert_eq!(classify(Some("Throttling"), "Rate exceeded"), ErrorKind::Throttled);
        assert_eq!(classify(Some("SlowDown"), ""), ErrorKind::Throttled);
        assert_eq!(classify(Some("Throttled"), ""), ErrorKind::Throttled);
        assert_eq!(classify(Some("QueueDeletedRecently"), ""), ErrorKind::Throttled);
        assert_eq!(classify(Some("EntityNotFoundException"), ""), ErrorKind::NotFound);
        assert_eq!(classify(Some("InvalidRequestException"), "WorkGroup x is not found."), ErrorKind::NotFound);
        assert_eq!(classify(Some("InvalidRequestException"), "bad cron"), ErrorKind::Invalid);
        assert_eq!(classify(Some("AuthorizationError"), ""), ErrorKind::AccessDenied);
        assert_eq!(classify(Some("UnsupportedNotification"), ""), ErrorKind::Invalid);
        assert_eq!(classify(Some("Whatever"), ""), ErrorKind::Other);
        assert_eq!(classify(None, ""), ErrorKind::Other);
    }

    #[test]
    fn reasons_are_camel_case() {
        let e = AwsError::new(ErrorKind::NotOwned, "glue", "GetCrawler", "x");
        assert_eq!(e.reason(), "AwsResourceNotOwned");
        assert_eq!(e.to_string(), "glue GetCrawler: x");
        assert!(!e.is_transient());
    }
}
