//! The published API contract: poem-openapi's generated document, finished in one place.
//!
//! Two things poem-openapi 5 does not express are added here, so that every response the
//! server sends validates against the document:
//!
//! - **`null` for `Option` fields.** An `Option<T>` field of an `Object` is emitted as a
//!   non-required property with `T`'s schema, but `None` is serialized as `null`. Such
//!   properties become `nullable: true` (a `$ref` becomes `allOf: [{$ref}]` + `nullable`,
//!   since siblings of `$ref` are ignored in OpenAPI 3.0). The derive makes a property
//!   non-required only when its type is not required (`Option`, `MaybeUndefined`) or the
//!   field has its own `#[oai(default)]`; the latter carries a `default` in the schema, which
//!   is `null` only for an `Option` field. So: *not required and no non-null `default`* is
//!   exactly "an `Option` in Rust". (The derive's own `#[oai(nullable)]` would need an
//!   attribute on every one of those fields.)
//! - **Errors.** Every error body is `ApiErrorBody` (see [`crate::error`]); each operation
//!   lists the statuses it can answer with, derived from its shape (security, method,
//!   parameters, body) plus the few handler-specific ones in [`EXTRA_STATUSES`].
//!
//! The JSON is kept in poem-openapi's key order (serde_json here is built without
//! `preserve_order`, so a small ordered tree is used instead of `serde_json::Value`).

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::error::ERROR_CODES;

/// Content type of every error body (what [`crate::error::json_error`] sends).
const ERROR_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// Statuses that only a handler's logic can produce, by operation id. Everything else is
/// derived from the operation's shape in [`derived_statuses`].
const EXTRA_STATUSES: &[(&str, &[u16])] = &[
    // 409: the handler (or a unique index behind it) refuses a duplicate or a state change.
    // The unauthenticated auth flows answer 401 for bad credentials or tokens themselves.
    ("signup", &[409, 429]),
    ("adminInviteClient", &[409]),
    ("acceptOwnerInvite", &[404, 409, 429]),
    ("requestPasswordReset", &[429]),
    ("confirmPasswordReset", &[404, 429]),
    ("updateProfile", &[403, 409]),
    ("changePassword", &[403]),
    ("login", &[401, 429]),
    ("refresh", &[401]),
    ("acceptInvite", &[404, 409, 429]),
    ("updateMemberRole", &[409]),
    ("removeMember", &[409]),
    ("createInvite", &[409]),
    ("linkAccount", &[409]),
    ("verifyAccount", &[409]),
    ("linkAccountWithKeys", &[409]),
    ("resyncAccount", &[409]),
    ("registerCluster", &[409]),
    ("createAgentToken", &[409]),
    ("optimizeCluster", &[409]),
    ("estimateClusterPolicyImpact", &[409]),
    ("adminGraduateRiskModel", &[409]),
    ("labLiveSwitch", &[404, 409]),
    ("labCreateAbTest", &[409]),
    ("labStopAbTest", &[409]),
    ("labGraduate", &[409]),
    ("adminRollbackRiskModel", &[409]),
    ("cancelJob", &[409]),
    ("revokeOverride", &[409]),
    ("adminCreateClient", &[409]),
    ("adminBlockClient", &[409]),
    ("adminUnblockClient", &[409]),
    ("adminDeleteClient", &[409]),
    ("adminRestoreClient", &[409]),
    // 404: an id in the body is not the organization's (or nothing is being impersonated).
    ("cleanupOrphanedVolumes", &[404]),
    ("cleanupUnusedSnapshots", &[404]),
    ("terminateUnregisteredInstances", &[404]),
    ("authorizeUnregisteredInstances", &[404]),
    ("adminCurrentImpersonation", &[404]),
    ("deleteTemplate", &[409]),
    // 404: the account or organization named in the body does not exist.
    ("estimateTemplate", &[404, 409]),
    ("listTemplateSecurityGroups", &[404, 409]),
    ("adminImpersonate", &[404]),
    // 429: the caller (or the server) holds as many live streams as allowed.
    ("streamEvents", &[429]),
    ("streamAdminEvents", &[429]),
    ("streamAdminLogs", &[429]),
];

fn describe_status(code: u16) -> &'static str {
    match code {
        400 => "The request could not be read (`malformed_json`, `bad_request`).",
        401 => "Missing, invalid or expired access token (`unauthorized`).",
        403 => {
            "The caller's role does not allow this (`forbidden`); viewers get it on every mutation."
        }
        404 => "No such resource in the caller's organization (`not_found`).",
        409 => "Conflicts with the current state or an existing resource (`conflict`).",
        413 => "The request body is over the size limit (`payload_too_large`).",
        415 => "The request body is not JSON (`unsupported_media_type`).",
        422 => "A field is invalid, missing or unknown (`validation_failed`, with `field`).",
        429 => "Too many requests from this client (`rate_limited`); see `Retry-After`.",
        503 => "A dependency is unavailable (`unavailable`); retry later.",
        _ => "Error.",
    }
}

/// Returns the finished document (pretty JSON, like poem-openapi's `spec()`).
pub fn finish(spec: &str) -> String {
    let mut doc: J = match serde_json::from_str(spec) {
        Ok(d) => d,
        // Cannot happen for poem-openapi's own output; serve it unchanged rather than panic.
        Err(_) => return spec.to_string(),
    };
    if let Some(schemas) = doc.get_mut("components").and_then(|c| c.get_mut("schemas")) {
        if let J::Obj(entries) = schemas {
            for (_, schema) in entries.iter_mut() {
                mark_optional_nullable(schema);
            }
        }
        add_error_schemas(schemas);
    }
    if let Some(J::Obj(paths)) = doc.get_mut("paths") {
        for (path, item) in paths.iter_mut() {
            let J::Obj(ops) = item else { continue };
            for (method, op) in ops.iter_mut() {
                for_each_body_schema(op, &mut mark_optional_nullable);
                add_error_responses(path, method, op);
            }
        }
    }
    serde_json::to_string_pretty(&doc).unwrap_or_else(|_| spec.to_string())
}

/// Applies `f` to the inline schemas of an operation's request and response bodies.
fn for_each_body_schema(op: &mut J, f: &mut impl FnMut(&mut J)) {
    if let Some(J::Obj(content)) = op.get_mut("requestBody").and_then(|b| b.get_mut("content")) {
        for (_, media) in content.iter_mut() {
            if let Some(s) = media.get_mut("schema") {
                f(s);
            }
        }
    }
    if let Some(J::Obj(responses)) = op.get_mut("responses") {
        for (_, resp) in responses.iter_mut() {
            if let Some(J::Obj(content)) = resp.get_mut("content") {
                for (_, media) in content.iter_mut() {
                    if let Some(s) = media.get_mut("schema") {
                        f(s);
                    }
                }
            }
        }
    }
}

/// Marks the `Option` properties of `schema` (and of the object schemas nested in it)
/// nullable.
fn mark_optional_nullable(schema: &mut J) {
    let required: Vec<String> = match schema.get("required") {
        Some(J::Arr(items)) => items
            .iter()
            .filter_map(|v| match v {
                J::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if let Some(J::Obj(props)) = schema.get_mut("properties") {
        for (name, prop) in props.iter_mut() {
            let has_value_default = prop.get("default").is_some_and(|d| !matches!(d, J::Null));
            if !required.iter().any(|r| r == name) && !has_value_default {
                make_nullable(prop);
            }
            mark_optional_nullable(prop);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(inner) = schema.get_mut(key) {
            if matches!(inner, J::Obj(_)) {
                mark_optional_nullable(inner);
            }
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(J::Arr(items)) = schema.get_mut(key) {
            for inner in items.iter_mut() {
                mark_optional_nullable(inner);
            }
        }
    }
}

fn make_nullable(prop: &mut J) {
    let J::Obj(entries) = prop else { return };
    if entries.iter().any(|(k, _)| k == "$ref") {
        let reference = std::mem::take(entries);
        *entries = vec![
            ("allOf".into(), J::Arr(vec![J::Obj(reference)])),
            ("nullable".into(), J::Bool(true)),
        ];
    } else {
        prop.insert("nullable", J::Bool(true));
    }
}

/// `ApiErrorBody` and `ApiErrorDetail`, inserted in poem-openapi's (alphabetical) order.
fn add_error_schemas(schemas: &mut J) {
    let detail = obj(vec![
        ("type", J::Str("object".into())),
        ("title", J::Str("ApiErrorDetail".into())),
        (
            "description",
            J::Str("What went wrong. `code` is stable and meant for programs; `message` is for people; `field` names the offending field of a 422 (and of some 409s).".into()),
        ),
        (
            "required",
            J::Arr(vec![J::Str("code".into()), J::Str("message".into())]),
        ),
        (
            "properties",
            obj(vec![
                (
                    "code",
                    obj(vec![
                        ("type", J::Str("string".into())),
                        (
                            "enum",
                            J::Arr(ERROR_CODES.iter().map(|c| J::Str((*c).into())).collect()),
                        ),
                    ]),
                ),
                ("message", obj(vec![("type", J::Str("string".into()))])),
                ("field", obj(vec![("type", J::Str("string".into()))])),
            ]),
        ),
    ]);
    let body = obj(vec![
        ("type", J::Str("object".into())),
        ("title", J::Str("ApiErrorBody".into())),
        (
            "description",
            J::Str("The body of every error response.".into()),
        ),
        ("required", J::Arr(vec![J::Str("error".into())])),
        (
            "properties",
            obj(vec![("error", reference("ApiErrorDetail"))]),
        ),
    ]);
    schemas.insert_sorted("ApiErrorBody", body);
    schemas.insert_sorted("ApiErrorDetail", detail);
}

fn is_mutating(method: &str) -> bool {
    matches!(method, "post" | "put" | "patch" | "delete")
}

/// The error statuses an operation can answer with, from its shape.
fn derived_statuses(path: &str, method: &str, op: &J) -> Vec<u16> {
    let secured = matches!(op.get("security"), Some(J::Arr(s)) if !s.is_empty());
    let params: Vec<&str> = match op.get("parameters") {
        Some(J::Arr(ps)) => ps
            .iter()
            .filter_map(|p| match p.get("in") {
                Some(J::Str(s)) => Some(s.as_str()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let has_body = op.get("requestBody").is_some();
    let op_id = match op.get("operationId") {
        Some(J::Str(s)) => s.as_str(),
        _ => "",
    };
    let mut out = Vec::new();
    if has_body || !params.is_empty() {
        out.push(400);
    }
    if secured || path.starts_with("/api/events") || path.starts_with("/api/admin/events") {
        out.push(401);
    }
    // Viewers are refused every mutation outside /api/auth/; /api/admin/ is super_admin only.
    if (secured && is_mutating(method) && !path.starts_with("/api/auth/"))
        || path.starts_with("/api/admin/")
        || path.starts_with("/api/lab/")
    {
        out.push(403);
    }
    if params.contains(&"path") {
        out.push(404);
    }
    if is_mutating(method) {
        out.push(413);
    }
    if has_body {
        out.push(415);
    }
    if has_body || !params.is_empty() {
        out.push(422);
    }
    // Every operation behind a token or taking a body reads the database: a lost connection
    // or an exhausted pool answers 503.
    if secured || has_body {
        out.push(503);
    }
    if let Some((_, extra)) = EXTRA_STATUSES.iter().find(|(id, _)| *id == op_id) {
        out.extend_from_slice(extra);
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn add_error_responses(path: &str, method: &str, op: &mut J) {
    let statuses = derived_statuses(path, method, op);
    let Some(responses) = op.get_mut("responses") else {
        return;
    };
    for status in statuses {
        let key = status.to_string();
        if responses.get(&key).is_some() {
            continue;
        }
        let mut resp = vec![
            ("description", J::Str(describe_status(status).into())),
            (
                "content",
                obj(vec![(
                    ERROR_CONTENT_TYPE,
                    obj(vec![("schema", reference("ApiErrorBody"))]),
                )]),
            ),
        ];
        if status == 429 {
            resp.push((
                "headers",
                obj(vec![(
                    "Retry-After",
                    obj(vec![
                        (
                            "description",
                            J::Str("Seconds until the next attempt is allowed.".into()),
                        ),
                        ("required", J::Bool(true)),
                        ("schema", obj(vec![("type", J::Str("integer".into()))])),
                    ]),
                )]),
            ));
        }
        responses.insert_sorted(&key, obj(resp));
    }
}

fn reference(name: &str) -> J {
    obj(vec![(
        "$ref",
        J::Str(format!("#/components/schemas/{name}")),
    )])
}

fn obj(entries: Vec<(&str, J)>) -> J {
    J::Obj(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// A JSON value that keeps its object keys in document order.
#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn get(&self, key: &str) -> Option<&J> {
        match self {
            J::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut J> {
        match self {
            J::Obj(entries) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Sets `key`, keeping its place when present, else appending.
    fn insert(&mut self, key: &str, value: J) {
        if let J::Obj(entries) = self {
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some((_, v)) => *v = value,
                None => entries.push((key.to_string(), value)),
            }
        }
    }

    /// Sets `key`, placing a new key before the first greater one.
    fn insert_sorted(&mut self, key: &str, value: J) {
        if let J::Obj(entries) = self {
            if let Some((_, v)) = entries.iter_mut().find(|(k, _)| k == key) {
                *v = value;
                return;
            }
            let at = entries
                .iter()
                .position(|(k, _)| k.as_str() > key)
                .unwrap_or(entries.len());
            entries.insert(at, (key.to_string(), value));
        }
    }
}

impl Serialize for J {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            J::Null => s.serialize_unit(),
            J::Bool(b) => s.serialize_bool(*b),
            J::Num(n) => n.serialize(s),
            J::Str(v) => s.serialize_str(v),
            J::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            J::Obj(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_none<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<J, E> {
                Ok(J::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<J, E> {
                Ok(J::Num(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<J, E> {
                Ok(J::Num(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<J, E> {
                Ok(serde_json::Number::from_f64(v).map_or(J::Null, J::Num))
            }
            fn visit_str<E>(self, v: &str) -> Result<J, E> {
                Ok(J::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<J, E> {
                Ok(J::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(J::Arr(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, J>()? {
                    entries.push((k, v));
                }
                Ok(J::Obj(entries))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> J {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn key_order_and_numbers_survive_a_round_trip() {
        let src = r#"{"z":1,"a":[0.25,-3,{"y":null,"b":true}],"m":"x"}"#;
        let pretty = serde_json::to_string_pretty(&parse(src)).unwrap();
        let plain: serde_json::Value = serde_json::from_str(src).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&pretty).unwrap(),
            plain
        );
        assert!(pretty.find("\"z\"").unwrap() < pretty.find("\"a\"").unwrap());
    }

    #[test]
    fn only_option_properties_become_nullable() {
        let mut s = parse(
            r##"{"type":"object","required":["id","flags"],"properties":{
                "id":{"type":"string"},
                "flags":{"type":"array","items":{"type":"string"},"default":[]},
                "limit":{"type":"integer","default":50},
                "note":{"type":"string"},
                "cleared":{"type":"string","default":null},
                "kind":{"$ref":"#/components/schemas/Kind"},
                "described":{"allOf":[{"$ref":"#/components/schemas/Kind"},{"description":"d"}],"description":"d"},
                "tags":{"type":"object","additionalProperties":{"type":"string"}}
            }}"##,
        );
        mark_optional_nullable(&mut s);
        let p = |n: &str| s.get("properties").unwrap().get(n).unwrap().clone();
        assert_eq!(p("id").get("nullable"), None);
        assert_eq!(p("flags").get("nullable"), None);
        assert_eq!(p("limit").get("nullable"), None);
        assert_eq!(p("note").get("nullable"), Some(&J::Bool(true)));
        assert_eq!(p("cleared").get("nullable"), Some(&J::Bool(true)));
        assert_eq!(p("tags").get("nullable"), Some(&J::Bool(true)));
        assert_eq!(p("described").get("nullable"), Some(&J::Bool(true)));
        let kind = p("kind");
        assert_eq!(kind.get("$ref"), None);
        assert_eq!(kind.get("nullable"), Some(&J::Bool(true)));
        assert_eq!(kind.get("allOf"), Some(&J::Arr(vec![reference("Kind")])));
    }

    #[test]
    fn statuses_follow_the_operation_shape() {
        let op = parse(
            r#"{"operationId":"renameAccount","security":[{"BearerAuth":[]}],
                "parameters":[{"in":"path","name":"id"}],"requestBody":{}}"#,
        );
        assert_eq!(
            derived_statuses("/api/accounts/{id}", "patch", &op),
            vec![400, 401, 403, 404, 413, 415, 422, 503]
        );
        let op = parse(r#"{"operationId":"listAccounts","security":[{"BearerAuth":[]}]}"#);
        assert_eq!(
            derived_statuses("/api/accounts", "get", &op),
            vec![401, 503]
        );
        let op = parse(r#"{"operationId":"login","requestBody":{}}"#);
        assert_eq!(
            derived_statuses("/api/auth/token", "post", &op),
            vec![400, 401, 413, 415, 422, 429, 503]
        );
    }
}
