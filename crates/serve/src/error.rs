//! [`HttpError`]: every failure a request can meet, as a status code and a message saying what to
//! do. Answered as plain text, so a browser, `curl` and a test all read it the same way.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mesalab_store::StoreError;

/// A failed request: its status and a message for the person who made it.
#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub message: String,
}

impl HttpError {
    /// 400: the request itself is malformed (bad id, bad parameter).
    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }

    /// 404: well-formed, but there is no such thing.
    pub fn not_found(message: impl Into<String>) -> HttpError {
        HttpError { status: StatusCode::NOT_FOUND, message: message.into() }
    }

    /// 500: the server could not answer (the store could not be read, a bug).
    pub fn internal(message: impl Into<String>) -> HttpError {
        HttpError { status: StatusCode::INTERNAL_SERVER_ERROR, message: message.into() }
    }
}

impl From<StoreError> for HttpError {
    fn from(err: StoreError) -> HttpError {
        match err {
            StoreError::UnknownRun { id, .. } => {
                HttpError::not_found(format!("there is no run {id} in this store; the runs page lists every run"))
            }
            other => HttpError::internal(format!("could not read the store: {other}")),
        }
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body =
            format!("{} {}\n\n{}\n", self.status.as_u16(), self.status.canonical_reason().unwrap_or(""), self.message);
        (self.status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
    }
}
