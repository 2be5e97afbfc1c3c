//! The JSON body extractor: content type checked, size limited, and every decoding problem
//! turned into an [`ApiError`] that names the field at fault.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use exchange_core::ErrorCode;
use serde::de::DeserializeOwned;

/// A JSON request body of type `T`.
pub struct JsonBody<T>(pub T);

/// Fields the API expects as decimal strings.
const DECIMAL_FIELDS: &[&str] = &["price", "quantity", "quote_quantity"];

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedContentType,
                "the body must be JSON, sent with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the body is larger than {} bytes", crate::MAX_BODY_BYTES),
                )
            } else {
                ApiError::new(
                    ErrorCode::MalformedRequest,
                    format!("could not read the body: {e}"),
                )
            }
        })?;
        parse(&bytes).map(JsonBody)
    }
}

/// Decodes a JSON body, naming the field of any error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde would read a JSON array into a struct field by field; the API takes objects only.
    if bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b != b'{')
    {
        return Err(ApiError::new(
            ErrorCode::MalformedRequest,
            "the body must be a JSON object",
        ));
    }
    // Tracking the path of every value costs on each request; only a failure needs it.
    if let Ok(value) = serde_json::from_slice(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::new(
                ErrorCode::MalformedRequest,
                format!("the body is not valid JSON: {inner}"),
            );
        }
        let message = inner.to_string();
        // serde reports an unknown field at its parent's path; name the field itself.
        if let Some(rest) = message.strip_prefix("unknown field `")
            && let Some((name, _)) = rest.split_once('`')
        {
            return ApiError {
                code: ErrorCode::InvalidField,
                message: format!("{name} is not a field of this request ({message})"),
                field: Some(name.to_owned()),
                status: None,
            };
        }
        if path == "." {
            return ApiError::new(
                ErrorCode::MalformedRequest,
                format!("the body must be a JSON object: {message}"),
            );
        }
        let detail = message.split(" at line").next().unwrap_or(&message);
        if DECIMAL_FIELDS.contains(&path.as_str()) {
            ApiError::field(
                ErrorCode::InvalidNumber,
                &path,
                format!("must be a decimal string such as \"65000.50\" ({detail})"),
            )
        } else {
            ApiError::field(
                ErrorCode::InvalidField,
                &path,
                format!("has the wrong type ({detail})"),
            )
        }
    })?;
    de.end().map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedRequest,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    Ok(value)
}
