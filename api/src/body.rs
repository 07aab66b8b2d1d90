//! `Body<T>`: a JSON request body parsed strictly with serde (no coercion of numbers or
//! booleans into strings, unknown fields rejected by `#[serde(deny_unknown_fields)]`) while
//! the OpenAPI schema still comes from `T`'s poem-openapi `Object` derive. Errors name the
//! offending field: 400 `malformed_json` for unreadable bodies, 422 `validation_failed` for
//! bodies that parse but do not fit.

use std::ops::Deref;

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaMediaType, MetaRequest, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<T> Deref for Body<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Type> Payload for Body<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(m) if m.type_() == "application"
            && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// Turns serde's message into one that reads well and the path into the field name.
fn describe(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let msg = inner.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or("").to_string();
        // For unknown fields serde's path already ends at the field itself.
        let field = if path == "." || path.is_empty() {
            name
        } else {
            path
        };
        return ApiError::Validation {
            message: format!("unknown field `{field}`"),
            field: Some(field),
        };
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or("").to_string();
        let field = if path == "." || path.is_empty() {
            name.clone()
        } else {
            format!("{path}.{name}")
        };
        return ApiError::Validation {
            message: format!("{field} is required"),
            field: Some(field),
        };
    }
    let field = (path != "." && !path.is_empty()).then_some(path);
    let message = match &field {
        Some(f) => format!("{f}: {msg}"),
        None => msg,
    };
    ApiError::Validation { field, message }
}

/// Parses a JSON object strictly into any serde type (no poem-openapi schema needed), with
/// the same errors as [`Body`]: 400 for unreadable JSON, 422 naming the field otherwise.
pub fn parse_json<T: DeserializeOwned>(data: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(data)
        .map_err(|e| ApiError::MalformedJson(format!("request body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::Validation {
            field: None,
            message: "request body must be a JSON object".into(),
        });
    }
    serde_path_to_error::deserialize(value).map_err(describe)
}

impl<T: Type + DeserializeOwned> ParsePayload for Body<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = <Vec<u8> as FromRequest>::from_request(request, body).await?;
        let data: &[u8] = if data.iter().all(|b| b.is_ascii_whitespace()) {
            b"{}"
        } else {
            &data
        };
        // Syntax first, so malformed JSON is a 400 and never a field error.
        let value: serde_json::Value = serde_json::from_slice(data)
            .map_err(|e| ApiError::MalformedJson(format!("request body is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::Validation {
                field: None,
                message: "request body must be a JSON object".into(),
            }
            .into());
        }
        let parsed: T = serde_path_to_error::deserialize(value).map_err(describe)?;
        Ok(Body(parsed))
    }
}

impl<'a, T: Type + DeserializeOwned> ApiExtractor<'a> for Body<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType {
                content_type: <Self as Payload>::CONTENT_TYPE,
                schema: <Self as Payload>::schema_ref(),
            }],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        match request.content_type() {
            Some(ct) if <Self as Payload>::check_content_type(ct) => {
                <Self as ParsePayload>::from_request(request, body).await
            }
            Some(ct) => Err(poem_openapi::error::ContentTypeError::NotSupported {
                content_type: ct.to_string(),
            }
            .into()),
            None => Err(poem_openapi::error::ContentTypeError::ExpectContentType.into()),
        }
    }
}
