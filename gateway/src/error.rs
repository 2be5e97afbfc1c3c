//! API errors: every failure is JSON `{code, error, message, field}` with the code's HTTP status.
//!
//! Codes come from `exchange_core::ErrorCode` (one numbering across layers, see
//! `docs/error-codes.md`). Responses that axum or tower-http produce on their own (unknown
//! route, wrong method, body too large) are rewritten into the same shape by
//! [`json_errors`], so a client never has to parse anything else.

use crate::exchange::ExchangeError;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use exchange_accounts::AccountsError;
use exchange_core::{ErrorCode, RejectReason};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Numeric code; the thousands digit names the layer (see docs/error-codes.md).
    #[schema(example = 1008)]
    pub code: u16,
    /// The code's name.
    #[schema(example = "PRICE_OFF_TICK")]
    pub error: String,
    /// What is wrong, for a person.
    #[schema(example = "price must be a multiple of 0.01")]
    pub message: String,
    /// The request field at fault, when there is one.
    #[schema(example = "price")]
    pub field: Option<String>,
}

/// An error answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    /// Overrides the code's usual status (a missing resource in a path is a 404).
    pub status: Option<StatusCode>,
}

impl ApiError {
    /// An error with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            status: None,
        }
    }

    /// An error about one field; the message is prefixed with the field's name.
    pub fn field(code: ErrorCode, field: &str, reason: impl std::fmt::Display) -> Self {
        Self {
            code,
            message: format!("{field} {reason}"),
            field: Some(field.to_owned()),
            status: None,
        }
    }

    /// The same error with another HTTP status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// The engine refused the command.
    pub fn rejected(reason: RejectReason) -> Self {
        Self::new(reason.code(), reason.message())
    }

    fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
        })
    }

    fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.as_u16(),
            error: code_name(self.code),
            message: self.message.clone(),
            field: self.field.clone(),
        }
    }
}

/// `PRICE_OFF_TICK` for `ErrorCode::PriceOffTick`.
pub fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(code = self.code.as_u16(), message = %self.message, "request failed");
        }
        (status, axum::Json(self.body())).into_response()
    }
}

impl From<ExchangeError> for ApiError {
    fn from(e: ExchangeError) -> Self {
        match e {
            ExchangeError::Unavailable(_)
            | ExchangeError::NotLogged(_)
            | ExchangeError::ReadFailed(_) => ApiError::new(ErrorCode::Unavailable, e.to_string()),
            // The command is in the log and will be applied; only its answer is late.
            ExchangeError::Timeout => ApiError::new(ErrorCode::Unavailable, e.to_string())
                .with_status(StatusCode::GATEWAY_TIMEOUT),
        }
    }
}

impl From<AccountsError> for ApiError {
    fn from(e: AccountsError) -> Self {
        let code = match e {
            AccountsError::UnknownAccount(_) => ErrorCode::UnknownAccount,
            AccountsError::UnknownKey(_) => ErrorCode::NotFound,
            AccountsError::Insufficient { .. } => ErrorCode::InsufficientBalance,
            AccountsError::TransferConflict(_) => ErrorCode::TransferConflict,
            AccountsError::Unavailable(_) => ErrorCode::Unavailable,
        };
        ApiError::new(code, e.to_string())
    }
}

/// Rewrites an error response that is not already JSON (axum's and tower-http's own) into
/// [`ErrorBody`] JSON with the matching code; any other response is returned as it is.
pub fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such route".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => (
            ErrorCode::MethodNotAllowed,
            "this method is not allowed on this route".to_owned(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than {} bytes", crate::MAX_BODY_BYTES),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            ErrorCode::UnsupportedContentType,
            "the body must be application/json".to_owned(),
        ),
        s if s.is_server_error() => (ErrorCode::Internal, "internal error".to_owned()),
        _ => (
            ErrorCode::MalformedRequest,
            "the request is malformed".to_owned(),
        ),
    };
    let (mut parts, _) = response.into_parts();
    let body = serde_json::to_vec(&ApiError::new(code, message).body())
        .expect("error bodies always serialise");
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}
