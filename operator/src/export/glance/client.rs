//! Keystone authentication and the Glance v2 calls the export makes, over
//! the transfer layer's client (TLS verified, timeouts, bounded bodies, no
//! redirects, no secrets in messages).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::error::GlanceError;
use super::plan::{Found, PROP_IDENTIFIER, PROP_LIST};
use crate::transfer::{ApiBody, ApiRequest, ApiResponse, Transfer, TransferConfig};

/// The deadline of one API call (not of an upload).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Images one (list, identifier) may have in Glance before the listing is
/// refused as runaway.
const MAX_IMAGES: usize = 200;
const JSON: &str = "application/json";
const PATCH: &str = "application/openstack-images-v2.1-json-patch";

/// How to authenticate (from the credentials Secret).
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A Keystone application credential.
    ApplicationCredential { id: String, secret: String },
    /// A token, sent as is.
    Token(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ApplicationCredential { id, .. } => f
                .debug_struct("ApplicationCredential")
                .field("id", id)
                .field("secret", &"<redacted>")
                .finish(),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// Where Glance is and how to reach it.
#[derive(Debug, Clone)]
pub struct Connection {
    pub endpoint: Option<String>,
    pub auth_url: Option<String>,
    pub region: Option<String>,
    pub interface: String,
    pub credentials: Credentials,
    /// Extra CAs (PEM) for Keystone and Glance.
    pub ca_pem: Vec<u8>,
}

/// An authenticated Glance client.
#[derive(Clone)]
pub struct Glance {
    transfer: Transfer,
    endpoint: String,
    token: String,
    /// Upload deadline.
    upload_timeout: Duration,
}

impl std::fmt::Debug for Glance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Glance")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

fn header(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue), GlanceError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| GlanceError::Config {
        detail: format!("the {name} value is not a valid HTTP header value"),
    })?;
    value.set_sensitive(true);
    Ok((HeaderName::from_static(name), value))
}

impl Glance {
    /// Authenticates (application credential: a Keystone token; token: as
    /// given) and finds the endpoint (as configured, or in the catalog).
    pub async fn connect(
        connection: &Connection,
        base: &TransferConfig,
    ) -> Result<Self, GlanceError> {
        let config = TransferConfig {
            extra_ca_pem: connection.ca_pem.clone(),
            replace_system_roots: false,
            // An API that redirects is misconfigured; a redirect must not
            // carry the token to another host.
            max_redirects: 0,
            allow_file_scheme: false,
            auth: crate::transfer::Auth::None,
            image_auth: crate::transfer::Auth::None,
            credential_scope: None,
            ..base.clone()
        };
        let transfer = Transfer::for_api(&config)?;
        let upload_timeout = base
            .download_timeout
            .unwrap_or(Duration::from_secs(24 * 3600));
        let (token, catalog) = match &connection.credentials {
            Credentials::Token(token) => (token.clone(), None),
            Credentials::ApplicationCredential { id, secret } => {
                let auth_url =
                    connection
                        .auth_url
                        .as_deref()
                        .ok_or_else(|| GlanceError::Config {
                            detail: "application credentials need authUrl (the Keystone v3 URL)"
                                .into(),
                        })?;
                let (token, catalog) = keystone_token(&transfer, auth_url, id, secret).await?;
                (token, Some(catalog))
            }
        };
        let endpoint = match &connection.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => {
                let auth_url =
                    connection
                        .auth_url
                        .as_deref()
                        .ok_or_else(|| GlanceError::Config {
                            detail: "neither endpoint nor authUrl is set".into(),
                        })?;
                let catalog = match catalog {
                    Some(catalog) => catalog,
                    None => keystone_catalog(&transfer, auth_url, &token).await?,
                };
                catalog_endpoint(
                    &catalog,
                    &connection.interface,
                    connection.region.as_deref(),
                )?
            }
        };
        let endpoint = normalise_endpoint(&endpoint);
        tracing::debug!(endpoint = %crate::transfer::redact_url(&endpoint), "Glance endpoint");
        Ok(Self {
            transfer,
            endpoint,
            token,
            upload_timeout,
        })
    }

    /// The endpoint in use (without `/v2`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: ApiBody<'_>,
        timeout: Duration,
    ) -> Result<ApiResponse, GlanceError> {
        let url = format!("{}{path}", self.endpoint);
        Ok(self
            .transfer
            .api(ApiRequest {
                method,
                url: &url,
                headers: vec![header("x-auth-token", &self.token)?],
                body,
                timeout,
            })
            .await?)
    }

    async fn expect(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: ApiBody<'_>,
        timeout: Duration,
    ) -> Result<ApiResponse, GlanceError> {
        let response = self.call(method, path, body, timeout).await?;
        if !response.is_success() {
            return Err(GlanceError::Api {
                op,
                status: response.status,
                detail: response.excerpt(),
            });
        }
        Ok(response)
    }

    /// The import methods Glance offers (`GET /v2/info/import`).
    pub async fn import_methods(&self) -> Result<Vec<String>, GlanceError> {
        let response = self
            .expect(
                "list import methods",
                Method::GET,
                "/v2/info/import",
                ApiBody::None,
                CALL_TIMEOUT,
            )
            .await?;
        let value: Value = parse(&response, "list import methods")?;
        Ok(value
            .pointer("/import-methods/value")
            .and_then(Value::as_array)
            .map(|methods| {
                methods
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The images of one (list, identifier), hidden ones included.
    pub async fn find(&self, list: &str, identifier: &str) -> Result<Vec<Found>, GlanceError> {
        let mut found = Vec::new();
        for hidden in [false, true] {
            let mut query = url_query(&[(PROP_LIST, list), (PROP_IDENTIFIER, identifier)]);
            query.push_str(&format!("&limit={MAX_IMAGES}"));
            if hidden {
                query.push_str("&os_hidden=true");
            }
            let response = self
                .expect(
                    "list images",
                    Method::GET,
                    &format!("/v2/images?{query}"),
                    ApiBody::None,
                    CALL_TIMEOUT,
                )
                .await?;
            let value: Value = parse(&response, "list images")?;
            let images = value
                .get("images")
                .and_then(Value::as_array)
                .ok_or_else(|| GlanceError::Protocol {
                    op: "list images",
                    detail: "no images array".into(),
                })?;
            if images.len() >= MAX_IMAGES {
                return Err(GlanceError::Protocol {
                    op: "list images",
                    detail: format!("{MAX_IMAGES} or more images for {list} {identifier}"),
                });
            }
            for image in images {
                let found_image = found_from(image)?;
                // The filter is Glance's; check it anyway.
                if found_image.text(PROP_LIST) == Some(list)
                    && found_image.text(PROP_IDENTIFIER) == Some(identifier)
                    && !found.iter().any(|f: &Found| f.id == found_image.id)
                {
                    found.push(found_image);
                }
            }
        }
        Ok(found)
    }

    /// One image.
    pub async fn get(&self, id: &str) -> Result<Found, GlanceError> {
        let response = self
            .expect(
                "show image",
                Method::GET,
                &format!("/v2/images/{}", path_segment(id)),
                ApiBody::None,
                CALL_TIMEOUT,
            )
            .await?;
        found_from(&parse(&response, "show image")?)
    }

    /// `POST /v2/images`.
    pub async fn create(&self, body: &Value) -> Result<Found, GlanceError> {
        let response = self
            .expect(
                "create image",
                Method::POST,
                "/v2/images",
                ApiBody::Json {
                    content_type: JSON,
                    value: body,
                },
                CALL_TIMEOUT,
            )
            .await?;
        found_from(&parse(&response, "create image")?)
    }

    /// `PUT /v2/images/{id}/file`, streamed from `path`.
    pub async fn upload(&self, id: &str, path: &Path, size: u64) -> Result<(), GlanceError> {
        self.expect(
            "upload image data",
            Method::PUT,
            &format!("/v2/images/{}/file", path_segment(id)),
            ApiBody::File { path, size },
            self.upload_timeout,
        )
        .await?;
        Ok(())
    }

    /// `POST /v2/images/{id}/import` with `web-download` from `uri`.
    pub async fn web_download(&self, id: &str, uri: &str) -> Result<(), GlanceError> {
        let body = json!({"method": {"name": "web-download", "uri": uri}});
        self.expect(
            "start web-download import",
            Method::POST,
            &format!("/v2/images/{}/import", path_segment(id)),
            ApiBody::Json {
                content_type: JSON,
                value: &body,
            },
            CALL_TIMEOUT,
        )
        .await?;
        Ok(())
    }

    /// A JSON patch: `(field, value, exists)`.
    pub async fn update(&self, id: &str, set: &[(String, Value, bool)]) -> Result<(), GlanceError> {
        let patch: Vec<Value> = set
            .iter()
            .map(|(name, value, exists)| {
                json!({
                    "op": if *exists { "replace" } else { "add" },
                    "path": format!("/{}", name.replace('~', "~0").replace('/', "~1")),
                    "value": value,
                })
            })
            .collect();
        let patch = Value::Array(patch);
        self.expect(
            "update image",
            Method::PATCH,
            &format!("/v2/images/{}", path_segment(id)),
            ApiBody::Json {
                content_type: PATCH,
                value: &patch,
            },
            CALL_TIMEOUT,
        )
        .await?;
        Ok(())
    }

    /// `POST /v2/images/{id}/actions/{deactivate|reactivate}`.
    pub async fn action(&self, id: &str, action: &'static str) -> Result<(), GlanceError> {
        self.expect(
            action,
            Method::POST,
            &format!("/v2/images/{}/actions/{action}", path_segment(id)),
            ApiBody::None,
            CALL_TIMEOUT,
        )
        .await?;
        Ok(())
    }

    /// `DELETE /v2/images/{id}` (gone already is fine).
    pub async fn delete(&self, id: &str) -> Result<(), GlanceError> {
        let response = self
            .call(
                Method::DELETE,
                &format!("/v2/images/{}", path_segment(id)),
                ApiBody::None,
                CALL_TIMEOUT,
            )
            .await?;
        if response.is_success() || response.status == 404 {
            Ok(())
        } else {
            Err(GlanceError::Api {
                op: "delete image",
                status: response.status,
                detail: response.excerpt(),
            })
        }
    }
}

/// `https://glance:9292/v2/` -> `https://glance:9292`.
fn normalise_endpoint(endpoint: &str) -> String {
    let trimmed = endpoint.trim().trim_end_matches('/');
    trimmed.strip_suffix("/v2").unwrap_or(trimmed).to_string()
}

fn path_segment(id: &str) -> String {
    url_escape(id)
}

fn url_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn url_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", url_escape(k), url_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn parse(response: &ApiResponse, op: &'static str) -> Result<Value, GlanceError> {
    serde_json::from_slice(&response.body).map_err(|e| GlanceError::Protocol {
        op,
        detail: format!("not JSON: {e}"),
    })
}

/// A Glance image document as the planner sees it.
pub fn found_from(image: &Value) -> Result<Found, GlanceError> {
    let object = image.as_object().ok_or_else(|| GlanceError::Protocol {
        op: "read image",
        detail: "an image is not a JSON object".into(),
    })?;
    let text = |name: &str| object.get(name).and_then(Value::as_str).map(str::to_string);
    let id = text("id").ok_or_else(|| GlanceError::Protocol {
        op: "read image",
        detail: "an image without id".into(),
    })?;
    let fields: BTreeMap<String, Value> =
        object.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(Found {
        id,
        status: text("status").unwrap_or_default(),
        hidden: object
            .get("os_hidden")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        visibility: text("visibility").unwrap_or_default(),
        fields,
    })
}

/// `POST {auth_url}/auth/tokens` with an application credential: the
/// token and the catalog.
async fn keystone_token(
    transfer: &Transfer,
    auth_url: &str,
    id: &str,
    secret: &str,
) -> Result<(String, Value), GlanceError> {
    let body = json!({"auth": {"identity": {
        "methods": ["application_credential"],
        "application_credential": {"id": id, "secret": secret}
    }}});
    let url = format!("{}/auth/tokens", auth_url.trim_end_matches('/'));
    let response = transfer
        .api(ApiRequest {
            method: Method::POST,
            url: &url,
            headers: Vec::new(),
            body: ApiBody::Json {
                content_type: JSON,
                value: &body,
            },
            timeout: CALL_TIMEOUT,
        })
        .await?;
    if response.status != 201 {
        return Err(GlanceError::Keystone {
            status: response.status,
            detail: response.excerpt(),
        });
    }
    let token = response
        .header("x-subject-token")
        .ok_or_else(|| GlanceError::Protocol {
            op: "Keystone authentication",
            detail: "no X-Subject-Token header".into(),
        })?
        .to_string();
    let value = parse(&response, "Keystone authentication")?;
    let catalog = value
        .pointer("/token/catalog")
        .cloned()
        .unwrap_or(Value::Array(Vec::new()));
    Ok((token, catalog))
}

/// `GET {auth_url}/auth/catalog` for a given token.
async fn keystone_catalog(
    transfer: &Transfer,
    auth_url: &str,
    token: &str,
) -> Result<Value, GlanceError> {
    let url = format!("{}/auth/catalog", auth_url.trim_end_matches('/'));
    let response = transfer
        .api(ApiRequest {
            method: Method::GET,
            url: &url,
            headers: vec![header("x-auth-token", token)?],
            body: ApiBody::None,
            timeout: CALL_TIMEOUT,
        })
        .await?;
    if !response.is_success() {
        return Err(GlanceError::Keystone {
            status: response.status,
            detail: response.excerpt(),
        });
    }
    let value = parse(&response, "Keystone catalog")?;
    Ok(value
        .get("catalog")
        .cloned()
        .unwrap_or(Value::Array(Vec::new())))
}

/// The `image` service's URL for `interface` (and `region`) in a Keystone
/// v3 catalog.
pub fn catalog_endpoint(
    catalog: &Value,
    interface: &str,
    region: Option<&str>,
) -> Result<String, GlanceError> {
    let services = catalog.as_array().map(Vec::as_slice).unwrap_or_default();
    services
        .iter()
        .filter(|service| service.get("type").and_then(Value::as_str) == Some("image"))
        .flat_map(|service| {
            service
                .get("endpoints")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
        })
        .filter(|endpoint| endpoint.get("interface").and_then(Value::as_str) == Some(interface))
        .find(|endpoint| {
            region.is_none_or(|region| {
                endpoint.get("region_id").and_then(Value::as_str) == Some(region)
                    || endpoint.get("region").and_then(Value::as_str) == Some(region)
            })
        })
        .and_then(|endpoint| endpoint.get("url").and_then(Value::as_str))
        .map(str::to_string)
        .ok_or_else(|| GlanceError::Config {
            detail: format!(
                "the Keystone catalog has no image service endpoint for interface {interface}{}",
                region
                    .map(|r| format!(" in region {r}"))
                    .unwrap_or_default()
            ),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_image_endpoint_in_a_catalog() {
        let catalog = json!([
            {"type": "identity", "endpoints": [{"interface": "public", "region_id": "R1", "url": "https://ks/v3"}]},
            {"type": "image", "endpoints": [
                {"interface": "internal", "region_id": "R1", "url": "https://int:9292"},
                {"interface": "public", "region_id": "R1", "url": "https://r1:9292"},
                {"interface": "public", "region_id": "R2", "url": "https://r2:9292/v2/"}
            ]}
        ]);
        assert_eq!(
            catalog_endpoint(&catalog, "public", None).unwrap(),
            "https://r1:9292"
        );
        assert_eq!(
            catalog_endpoint(&catalog, "public", Some("R2")).unwrap(),
            "https://r2:9292/v2/"
        );
        assert_eq!(
            catalog_endpoint(&catalog, "internal", Some("R1")).unwrap(),
            "https://int:9292"
        );
        assert!(catalog_endpoint(&catalog, "admin", None).is_err());
        assert_eq!(normalise_endpoint("https://r2:9292/v2/"), "https://r2:9292");
    }

    #[test]
    fn queries_are_escaped_and_secrets_hidden() {
        assert_eq!(
            url_query(&[("vmli_list", "ns/l x")]),
            "vmli_list=ns%2Fl%20x"
        );
        let shown = format!(
            "{:?} {:?}",
            Credentials::Token("t0ken".into()),
            Credentials::ApplicationCredential {
                id: "id1".into(),
                secret: "s3cret".into()
            }
        );
        assert!(
            !shown.contains("t0ken") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(shown.contains("id1"));
    }
}
