//! Reading a request without trusting its size: the body is read as a stream and refused with
//! 413 as soon as it passes the route's limit (or its `content-length` already says it will).

use futures::StreamExt as _;
use spin_sdk::http::{IncomingRequest, Method};
use streamgate_core::api_error::ApiError;

pub struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub query: String,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ApiRequest {
    /// The request's head, with the body still unread.
    pub fn head(req: &IncomingRequest) -> ApiRequest {
        let path_with_query = req.path_with_query().unwrap_or_else(|| "/".to_string());
        let (path, query) = match path_with_query.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (path_with_query, String::new()),
        };
        ApiRequest {
            method: req.method(),
            path,
            query,
            // Lossy, not dropped: a header whose bytes are not UTF-8 was still sent. Dropped,
            // an `Authorization` of such bytes made a caller anonymous on the routes where the
            // session is optional, instead of 401 for a token that cannot be valid.
            headers: req
                .headers()
                .entries()
                .into_iter()
                .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
                .collect(),
            body: Vec::new(),
        }
    }

    /// Reads the body, refusing more than `limit` bytes with 413 `payload_too_large`.
    pub async fn read_body(
        mut self,
        req: IncomingRequest,
        limit: usize,
    ) -> Result<ApiRequest, ApiError> {
        let too_large = || {
            ApiError::new(
                413,
                "payload_too_large",
                format!("the request body is larger than {limit} bytes"),
            )
        };
        if let Some(length) = self.header("content-length") {
            if length
                .trim()
                .parse::<u64>()
                .map_or(true, |n| n > limit as u64)
            {
                return Err(too_large());
            }
        }
        let mut stream = req.into_body_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::new(
                    400,
                    "bad_request",
                    format!("the request body could not be read: {e:?}"),
                )
            })?;
            if self.body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            self.body.extend_from_slice(&chunk);
        }
        Ok(self)
    }

    /// The first value of a header, as text (bytes that are not UTF-8 become U+FFFD; names are
    /// case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON of type `T`; 400 `invalid_json` naming the problem otherwise.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        let body: &[u8] = if self.body.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &self.body
        };
        serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                400,
                "invalid_json",
                format!("the request body is not valid JSON for this call: {e}"),
            )
        })
    }
}
