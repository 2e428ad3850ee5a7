//! Turning a transport error into a report item's error: its kind in the
//! report's small vocabulary, and what the API said, field by field.

use atsprov_model::report::{ErrorKind, ItemError};
use atsprov_transport::ErrorKind as Transport;

/// The item error of a failed call: the transport's message, HTTP status,
/// Adobe's code and the request id, with a kind from the report's vocabulary.
pub(crate) fn from_transport(err: &atsprov_transport::Error) -> ItemError {
    let kind = match err.kind() {
        Transport::Unauthorized | Transport::Forbidden => ErrorKind::Auth,
        Transport::Timeout | Transport::Connect => ErrorKind::Network,
        Transport::Ambiguous => ErrorKind::Ambiguous,
        Transport::Config => ErrorKind::Config,
        Transport::NotFound
        | Transport::PreconditionFailed
        | Transport::BadRequest
        | Transport::RateLimited
        | Transport::Server
        | Transport::Decode => ErrorKind::Api,
    };
    ItemError {
        kind,
        // What to do comes with what went wrong.
        message: match err.hint() {
            Some(hint) => format!("{}; {hint}", err.message()),
            None => err.message().to_owned(),
        },
        http_status: err.status(),
        code: err.code().map(str::to_owned),
        request_id: err.request_id().map(str::to_owned),
    }
}
